package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// outcomeAddressSuppressed is the outcome of an email step the email
// service refused because the address is on its suppression list (a hard
// bounce or a complaint before): the patient cannot be reached there, and
// a step with a fallback channel takes it.
const outcomeAddressSuppressed = "address_suppressed"

// SuppressedError is returned (marked [Permanent]) by an [EmailSender]
// when the email service refuses a Send because the recipient address is
// suppressed (FAILED_PRECONDITION with ErrorInfo reason "suppressed").
// Reason is the suppression's cause as the email service names it
// (hard_bounce, complaint); not PHI.
type SuppressedError struct {
	Reason string
}

func (e *SuppressedError) Error() string {
	if e.Reason == "" {
		return "email service refused the message: the address is suppressed"
	}
	return fmt.Sprintf("email service refused the message: the address is suppressed (%s)", e.Reason)
}

// addressSuppressed records an email step the email service refused as
// suppressed: audited as suppressed address_suppressed (detail channel
// and suppression), counted, logged. It is a decision, not a failure:
// the event is settled, and a step with a fallback takes it (see send).
func (s *Service) addressSuppressed(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, step audit.Object, err error, attrs []any) (string, error) {
	var se *SuppressedError
	errors.As(err, &se)
	detail := []string{"channel", string(catalog.ChannelEmail)}
	if se.Reason != "" {
		detail = append(detail, "suppression", se.Reason)
	}
	if aerr := s.decided(ctx, ev, j, step, audit.OutcomeSuppressed, outcomeAddressSuppressed, detail...); aerr != nil {
		return "", aerr
	}
	s.count(j, outcomeAddressSuppressed)
	s.logger.InfoContext(ctx, "email address suppressed; step not sent", append(attrs, "suppression", se.Reason)...)
	return outcomeAddressSuppressed, nil
}
