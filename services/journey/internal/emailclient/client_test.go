package emailclient_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	"github.com/carenotify/carenotify/pkg/grpcx"
	emailv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/email/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
	"github.com/carenotify/carenotify/services/journey/internal/emailclient"
)

// scripted answers every Send with err, or with a message id when err is nil,
// and keeps the last request and whether it had a deadline.
type scripted struct {
	emailv1.UnimplementedEmailServiceServer
	err         error
	last        *emailv1.SendRequest
	hadDeadline bool
}

func (s *scripted) Send(ctx context.Context, req *emailv1.SendRequest) (*emailv1.SendResponse, error) {
	s.last = proto.CloneOf(req)
	_, s.hadDeadline = ctx.Deadline()
	if s.err != nil {
		return nil, s.err
	}
	return &emailv1.SendResponse{MessageId: "msg-1", Duplicate: true}, nil
}

func serve(t *testing.T, srv *scripted) *emailclient.Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	emailv1.RegisterEmailServiceServer(gs, srv)
	go func() { _ = gs.Serve(l) }()
	t.Cleanup(gs.Stop)
	cc, err := grpcx.NewClient(l.Addr().String(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return emailclient.New(emailv1.NewEmailServiceClient(cc), 5*time.Second)
}

func withDetails(t *testing.T, c codes.Code, msg string, details ...protoadapt.MessageV1) error {
	t.Helper()
	st, err := status.New(c, msg).WithDetails(details...)
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

func TestSendEmailMapsErrors(t *testing.T) {
	const address = "someone@example.org"
	tests := []struct {
		name          string
		give          error
		wantPermanent bool
		wantErr       string
		// wantSuppressed is the SuppressedError's reason, if one is wanted.
		wantSuppressed string
	}{
		{name: "ok", give: nil},
		{name: "unavailable", give: status.Error(codes.Unavailable, "outbox down"), wantErr: "email send: Unavailable"},
		{name: "deadline", give: status.Error(codes.DeadlineExceeded, "slow"), wantErr: "email send: DeadlineExceeded: slow"},
		{name: "resource exhausted", give: status.Error(codes.ResourceExhausted, "rate limited"), wantErr: "email send: ResourceExhausted: rate limited"},
		{name: "unexpected", give: status.Error(codes.Internal, "oops"), wantErr: "email send: Internal: oops"},
		{
			name:          "invalid argument",
			give:          withDetails(t, codes.InvalidArgument, "bad to "+address, &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "to", Description: address}, {Field: "subject"}}}),
			wantPermanent: true,
			wantErr:       "email service rejected the message: InvalidArgument fields=to,subject",
		},
		{
			name:          "failed precondition",
			give:          withDetails(t, codes.FailedPrecondition, "suppressed "+address, &errdetails.ErrorInfo{Reason: "SUPPRESSED"}),
			wantPermanent: true,
			wantErr:       "email service rejected the message: FailedPrecondition reason=SUPPRESSED",
		},
		{
			// What services/email answers for an address on its suppression list.
			name: "suppressed address",
			give: withDetails(t, codes.FailedPrecondition, "recipient is suppressed "+address,
				&errdetails.ErrorInfo{Reason: "suppressed", Domain: "email.carenotify", Metadata: map[string]string{"suppression": "hard_bounce"}}),
			wantPermanent:  true,
			wantErr:        "email service refused the message: the address is suppressed (hard_bounce)",
			wantSuppressed: "hard_bounce",
		},
		{
			name: "suppressed with a cause that is not a code",
			give: withDetails(t, codes.FailedPrecondition, "suppressed",
				&errdetails.ErrorInfo{Reason: "suppressed", Domain: "email.carenotify", Metadata: map[string]string{"suppression": address}}),
			wantPermanent:  true,
			wantErr:        "email service refused the message: the address is suppressed (other)",
			wantSuppressed: "other",
		},
		{
			name:          "suppressed reason from another domain is a plain rejection",
			give:          withDetails(t, codes.FailedPrecondition, "x", &errdetails.ErrorInfo{Reason: "suppressed", Domain: "sms.carenotify"}),
			wantPermanent: true,
			wantErr:       "email service rejected the message: FailedPrecondition reason=suppressed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &scripted{err: tt.give}
			res, err := serve(t, srv).SendEmail(t.Context(), app.Email{
				Tenant: "demo", IdempotencyKey: "k", To: address, Subject: "s", Text: "t", HTML: "h",
				Security: catalog.SecurityNoPHI, Purpose: catalog.PurposeOperations, JourneyInstance: "j/1", Step: "0",
			})
			if tt.wantErr == "" {
				if err != nil || res != (app.SendResult{MessageID: "msg-1", Duplicate: true}) {
					t.Fatalf("SendEmail() = %+v, %v", res, err)
				}
			} else if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) || app.IsPermanent(err) != tt.wantPermanent {
				t.Fatalf("SendEmail() error = %v (permanent %t), want %q (permanent %t)", err, app.IsPermanent(err), tt.wantErr, tt.wantPermanent)
			}
			var se *app.SuppressedError
			if errors.As(err, &se) != (tt.wantSuppressed != "") || (se != nil && se.Reason != tt.wantSuppressed) {
				t.Errorf("SuppressedError = %+v, want reason %q", se, tt.wantSuppressed)
			}
			if tt.wantPermanent && strings.Contains(err.Error(), address) {
				t.Errorf("rejection quotes the address: %v", err)
			}
			want := &emailv1.SendRequest{
				Tenant: "demo", IdempotencyKey: "k", To: address, Subject: "s", TextBody: "t", HtmlBody: "h",
				Security: emailv1.Security_SECURITY_NO_PHI, Purpose: emailv1.Purpose_PURPOSE_OPERATIONS, JourneyInstance: "j/1", Step: "0",
			}
			if diff := cmp.Diff(want, srv.last, cmp.Comparer(proto.Equal)); diff != "" || !srv.hadDeadline {
				t.Errorf("request (-want +got):\n%s; deadline set: %t", diff, srv.hadDeadline)
			}
		})
	}
}
