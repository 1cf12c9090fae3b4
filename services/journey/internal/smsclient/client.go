package smsclient

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	smsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/sms/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
)

// Client sends text messages through the sms service.
type Client struct {
	sms     smsv1.SmsServiceClient
	timeout time.Duration
}

var _ app.SMSSender = (*Client)(nil)

// New returns a Client whose calls to Send each get timeout as deadline.
func New(sms smsv1.SmsServiceClient, timeout time.Duration) *Client {
	return &Client{sms: sms, timeout: timeout}
}

// SendSMS calls SmsService.Send. INVALID_ARGUMENT and FAILED_PRECONDITION
// are returned as [app.Permanent] (the message would be refused again:
// an invalid number, a body over the segment limit); every other failure
// is worth retrying with the same idempotency key.
func (c *Client) SendSMS(ctx context.Context, m app.SMS) (app.SendResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.sms.Send(ctx, &smsv1.SendRequest{
		Tenant: m.Tenant, IdempotencyKey: m.IdempotencyKey, To: string(m.To), Body: string(m.Body),
		JourneyInstance: m.JourneyInstance, Step: m.Step,
	})
	if err != nil {
		return app.SendResult{}, sendError(err)
	}
	return app.SendResult{MessageID: resp.GetMessageId(), Duplicate: resp.GetDuplicate()}, nil
}

// sendError maps a Send failure by code and the names of the fields at
// fault; status messages and descriptions are left out, as they may
// quote the request.
func sendError(err error) error {
	st := status.Convert(err)
	switch st.Code() {
	case codes.InvalidArgument, codes.FailedPrecondition:
		var fields []string
		for _, d := range st.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok {
				for _, v := range br.GetFieldViolations() {
					fields = append(fields, v.GetField())
				}
			}
		}
		msg := fmt.Sprintf("sms service rejected the message: %s", st.Code())
		if len(fields) > 0 {
			msg += " fields=" + strings.Join(fields, ",")
		}
		return app.Permanent(fmt.Errorf("%s", msg))
	case codes.Canceled:
		return fmt.Errorf("sms send: %s", st.Code())
	}
	return fmt.Errorf("sms send: %s", st.Code())
}
