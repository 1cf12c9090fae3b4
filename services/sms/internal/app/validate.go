package app

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/phone"
)

const (
	tenantRule        = "must be 1-64 letters, digits, '_' or '-'"
	maxIdempotencyKey = 200 // characters
)

// validate checks every field of req and lists all problems at once. It
// returns the body's encoding and segment count. Descriptions never quote
// a value: the request carries PHI.
func (s *Service) validate(req SendRequest, now time.Time) (Encoding, int, error) {
	var vs []FieldViolation
	add := func(field, desc string) { vs = append(vs, FieldViolation{Field: field, Description: desc}) }

	if !bus.ValidToken(req.Tenant) {
		add("tenant", tenantRule)
	}
	switch n := utf8.RuneCountInString(req.IdempotencyKey); {
	case n == 0:
		add("idempotency_key", "is required")
	case n > maxIdempotencyKey:
		add("idempotency_key", fmt.Sprintf("must be at most %d characters", maxIdempotencyKey))
	}
	switch {
	case req.To == "":
		add("to", "is required")
	case !phone.ValidE164(req.To):
		add("to", "must be a phone number in E.164 form: '+', country code and number, 8 to 15 digits, nothing else")
	}
	enc, segs := Segments(req.Body)
	switch {
	case req.Body == "":
		add("body", "is required")
	case !utf8.ValidString(req.Body):
		add("body", "must be valid UTF-8")
	case segs > s.o.MaxSegments:
		add("body", fmt.Sprintf("takes %d %s segments; at most %d are allowed (%d GSM-7 or %d UCS-2 characters per segment of a long message)",
			segs, enc, s.o.MaxSegments, gsm7Multi, ucs2Multi))
	}
	if !req.ExpiresAt.IsZero() {
		switch {
		case !req.ExpiresAt.After(now):
			add("expires_at", "must be in the future")
		case req.ExpiresAt.Sub(now) > s.o.MaxExpiry:
			add("expires_at", fmt.Sprintf("must be at most %s ahead (the outbox keeps messages that long)", s.o.MaxExpiry))
		}
	}
	if len(vs) > 0 {
		return enc, segs, &ValidationError{Violations: vs}
	}
	return enc, segs, nil
}
