package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
)

// consentAdmin answers the consent methods as the journey service does
// for known requests, and keeps what it was asked; the service side is
// tested in internal/service (TestConsentRebuildFromStream).
type consentAdmin struct {
	journeyv1.UnimplementedAdminServiceServer
	mu   sync.Mutex
	reqs []proto.Message
}

var changedAt = time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)

func (a *consentAdmin) keep(m proto.Message) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reqs = append(a.reqs, m)
}

func (a *consentAdmin) GetConsent(_ context.Context, req *journeyv1.GetConsentRequest) (*journeyv1.GetConsentResponse, error) {
	a.keep(req)
	if req.GetPatientId() == "p-none" {
		return nil, status.Error(codes.NotFound, "no consent record for this patient, channel and purpose")
	}
	return &journeyv1.GetConsentResponse{Consent: &journeyv1.Consent{Channel: req.GetChannel(), Purpose: req.GetPurpose(),
		State: "granted", Source: "fhir-consent", ChangedAt: timestamppb.New(changedAt), EvidenceRef: "Consent/77"}}, nil
}

func (a *consentAdmin) SetConsent(_ context.Context, req *journeyv1.SetConsentRequest) (*journeyv1.SetConsentResponse, error) {
	a.keep(req)
	return &journeyv1.SetConsentResponse{Consent: &journeyv1.Consent{Channel: req.GetChannel(), Purpose: req.GetPurpose(),
		State: req.GetState(), Source: req.GetSource(), ChangedAt: timestamppb.New(changedAt), EvidenceRef: req.GetEvidenceRef()}}, nil
}

func (a *consentAdmin) RebuildConsent(_ context.Context, req *journeyv1.RebuildConsentRequest) (*journeyv1.RebuildConsentResponse, error) {
	a.keep(req)
	return &journeyv1.RebuildConsentResponse{Changes: 6, Records: 4, Refused: 1}, nil
}

func TestConsentCommands(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &consentAdmin{}
	gs := grpc.NewServer()
	journeyv1.RegisterAdminServiceServer(gs, a)
	go func() { _ = gs.Serve(l) }()
	t.Cleanup(gs.Stop)
	run := func(args ...string) (string, error) {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"consent", "--journey-addr", l.Addr().String()}, args...))
		err := root.ExecuteContext(t.Context())
		return out.String(), err
	}
	tests := []struct {
		name    string
		give    []string
		want    string
		wantErr string
	}{
		{name: "get", give: []string{"get", "--tenant", "demo", "p-1", "email", "marketing"},
			want: "email marketing: granted by fhir-consent at 2031-02-03T04:05:06Z (evidence: Consent/77)\n"},
		{name: "get missing", give: []string{"get", "--tenant", "demo", "p-none", "sms", "treatment"}, wantErr: "NotFound"},
		{name: "set", give: []string{"set", "--tenant", "demo", "--evidence", "ticket 12", "p-1", "sms", "treatment", "revoked"},
			want: "sms treatment: revoked by admin at 2031-02-03T04:05:06Z (evidence: ticket 12)\n"},
		{name: "rebuild", give: []string{"rebuild", "--tenant", "demo"},
			want: "consent of tenant demo rebuilt: 6 changes read, 4 records written, 1 refused\n"},
		{name: "tenant required", give: []string{"rebuild"}, wantErr: "--tenant is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(tt.give...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || out != tt.want {
				t.Fatalf("output = %q, %v; want %q", out, err, tt.want)
			}
		})
	}
	want := []proto.Message{
		&journeyv1.GetConsentRequest{Tenant: "demo", PatientId: "p-1", Channel: "email", Purpose: "marketing"},
		&journeyv1.GetConsentRequest{Tenant: "demo", PatientId: "p-none", Channel: "sms", Purpose: "treatment"},
		&journeyv1.SetConsentRequest{Tenant: "demo", PatientId: "p-1", Channel: "sms", Purpose: "treatment", State: "revoked", Source: "admin", EvidenceRef: "ticket 12"},
		&journeyv1.RebuildConsentRequest{Tenant: "demo"},
	}
	if diff := cmp.Diff(want, a.reqs, protocmp.Transform()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}
