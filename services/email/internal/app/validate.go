package app

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/carenotify/carenotify/pkg/bus"
)

const (
	tenantRule        = "must be 1-64 letters, digits, '_' or '-'"
	maxIdempotencyKey = 200 // characters
	maxSubjectBytes   = 998 // RFC 5322 section 2.1.1 line limit
	maxAddressBytes   = 254 // RFC 5321 path limit less the angle brackets
)

// validate checks every field of req and lists all problems at once.
// Descriptions never quote a value: the request carries PHI.
func (s *Service) validate(req SendRequest, now time.Time) error {
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
	case !isAddrSpec(req.To):
		add("to", "must be one bare address (RFC 5322 addr-spec, no display name)")
	}
	switch {
	case req.Subject == "":
		add("subject", "is required")
	case len(req.Subject) > maxSubjectBytes:
		add("subject", fmt.Sprintf("must be at most %d bytes", maxSubjectBytes))
	case strings.ContainsAny(req.Subject, "\r\n"):
		add("subject", "must not contain CR or LF")
	}
	switch size := len(req.Subject) + len(req.HTMLBody) + len(req.TextBody); {
	case req.HTMLBody == "" && req.TextBody == "":
		add("html_body", "html_body or text_body is required")
	case size > s.o.MaxBytes:
		field := "html_body"
		if len(req.TextBody) > len(req.HTMLBody) {
			field = "text_body"
		}
		add(field, fmt.Sprintf("subject and bodies together must be at most %d bytes", s.o.MaxBytes))
	}
	if req.Security < SecurityUnspecified || req.Security > SecurityNoPHI {
		add("security", "must be SECURITY_PHI or SECURITY_NO_PHI (unset means PHI)")
	}
	if req.Purpose < PurposeUnspecified || req.Purpose > PurposeMarketing {
		add("purpose", "must be PURPOSE_TREATMENT, PURPOSE_OPERATIONS or PURPOSE_MARKETING (unset means treatment)")
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
		return &ValidationError{Violations: vs}
	}
	return nil
}

// ValidAddress reports whether s is a recipient Send accepts: exactly one
// bare address such as "jane@example.org".
func ValidAddress(s string) bool { return isAddrSpec(s) }

// isAddrSpec reports whether s is exactly one bare address such as
// "jane@example.org": no display name, no angle brackets, no comment.
func isAddrSpec(s string) bool {
	if len(s) > maxAddressBytes {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s && strings.Contains(s, "@")
}
