package emailclient

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	emailv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/email/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// Client sends email through the email service.
type Client struct {
	email   emailv1.EmailServiceClient
	timeout time.Duration
}

var _ app.EmailSender = (*Client)(nil)

// New returns a Client whose calls to Send each get timeout as deadline.
func New(email emailv1.EmailServiceClient, timeout time.Duration) *Client {
	return &Client{email: email, timeout: timeout}
}

// SendEmail calls EmailService.Send. INVALID_ARGUMENT and
// FAILED_PRECONDITION are returned as [app.Permanent]: the email service
// refused the message and would refuse it again; a refusal of a
// suppressed address is an [*app.SuppressedError]. Every other failure
// (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, anything
// unexpected) is worth retrying with the same idempotency key.
func (c *Client) SendEmail(ctx context.Context, e app.Email) (app.SendResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.email.Send(ctx, &emailv1.SendRequest{
		Tenant:          e.Tenant,
		IdempotencyKey:  e.IdempotencyKey,
		To:              string(e.To),
		Subject:         string(e.Subject),
		HtmlBody:        string(e.HTML),
		TextBody:        string(e.Text),
		Security:        security(e.Security),
		Purpose:         purpose(e.Purpose),
		JourneyInstance: e.JourneyInstance,
		Step:            e.Step,
	})
	if err != nil {
		return app.SendResult{}, sendError(err)
	}
	return app.SendResult{MessageID: resp.GetMessageId(), Duplicate: resp.GetDuplicate()}, nil
}

// security maps a step's PHI level; anything unknown is PHI (fail safe).
func security(s catalog.Security) emailv1.Security {
	if s == catalog.SecurityNoPHI {
		return emailv1.Security_SECURITY_NO_PHI
	}
	return emailv1.Security_SECURITY_PHI
}

// purpose maps a journey's purpose; anything unknown is treatment, which
// carries no marketing unsubscribe.
func purpose(p catalog.Purpose) emailv1.Purpose {
	switch p {
	case catalog.PurposeOperations:
		return emailv1.Purpose_PURPOSE_OPERATIONS
	case catalog.PurposeMarketing:
		return emailv1.Purpose_PURPOSE_MARKETING
	}
	return emailv1.Purpose_PURPOSE_TREATMENT
}

// sendError maps a Send failure. A rejection is described by its code, the
// ErrorInfo reason and the names of the fields at fault; the status
// message and field descriptions are left out, as they may quote the
// request (the recipient address, the rendered subject).
func sendError(err error) error {
	st := status.Convert(err)
	if se := suppressed(st); se != nil {
		return app.Permanent(se)
	}
	switch st.Code() {
	case codes.InvalidArgument, codes.FailedPrecondition:
		var b strings.Builder
		fmt.Fprintf(&b, "email service rejected the message: %s", st.Code())
		var fields []string
		for _, d := range st.Details() {
			switch d := d.(type) {
			case *errdetails.ErrorInfo:
				fmt.Fprintf(&b, " reason=%s", d.GetReason())
			case *errdetails.BadRequest:
				for _, v := range d.GetFieldViolations() {
					fields = append(fields, v.GetField())
				}
			}
		}
		if len(fields) > 0 {
			fmt.Fprintf(&b, " fields=%s", strings.Join(fields, ","))
		}
		return app.Permanent(fmt.Errorf("%s", b.String()))
	case codes.Canceled:
		return fmt.Errorf("email send: %s", st.Code())
	}
	// Transport failures say which address could not be reached, which
	// helps and is not PHI; the logging handler still scans the text.
	return fmt.Errorf("email send: %s: %s", st.Code(), st.Message())
}

// Domain and reason of the email service's google.rpc.ErrorInfo on a Send
// refused because the address is suppressed (services/email, server
// errors.go); its metadata "suppression" names the cause.
const (
	errorDomain      = "email.carenotify"
	reasonSuppressed = "suppressed"
)

// suppressed returns the SuppressedError st describes, or nil.
func suppressed(st *status.Status) *app.SuppressedError {
	if st.Code() != codes.FailedPrecondition {
		return nil
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == reasonSuppressed && info.GetDomain() == errorDomain {
			return &app.SuppressedError{Reason: cause(info.GetMetadata()["suppression"])}
		}
	}
	return nil
}

// cause keeps a suppression cause only when it is a short code (it ends
// up in audit records and logs).
func cause(v string) string {
	if len(v) > 32 {
		return "other"
	}
	for _, r := range v {
		if (r < 'a' || r > 'z') && r != '_' {
			return "other"
		}
	}
	return v
}
