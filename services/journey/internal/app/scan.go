package app

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// outcomeBlocked is a message not sent because its rendered content holds
// an identifier that must never go out (see [findIdentifier]).
const outcomeBlocked = "blocked_identifier"

// Kinds of identifier the outbound scan finds: the detail "identifier" of
// a blocked step and the identifier label of journey_outbound_blocked_total.
const (
	identifierSSN     = "ssn"
	identifierPatient = "patient_identifier"
)

// minIdentifierLen is the shortest business identifier the scan looks
// for: shorter ones ("12", "2031") would match dates, times and counts.
const minIdentifierLen = 5

// validSSN reports whether area, group and serial could be a Social
// Security number: never area 000, 666 or 900–999, group 00 or serial
// 0000 (SSA rules), so "000-00-0000" placeholders and out-of-range
// numbers do not block messages.
func validSSN(area, group, serial string) bool {
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}

// hasSSN reports whether s holds NNN-NN-NNNN that could be a Social
// Security number ([validSSN]) and is not part of a longer number: not
// next to another digit, nor joined by a hyphen to one ("1-800-55-1234",
// "2031-123-45-6789" are not SSNs; "SSN-123-45-6789" is).
func hasSSN(s string) bool {
	const shape = "ddd-dd-dddd"
	for i := 0; i+len(shape) <= len(s); i++ {
		if !fits(s[i:i+len(shape)], shape) {
			continue
		}
		end := i + len(shape)
		if i > 0 && (isDigit(s[i-1]) || s[i-1] == '-' && i > 1 && isDigit(s[i-2])) {
			continue
		}
		if end < len(s) && (isDigit(s[end]) || s[end] == '-' && end+1 < len(s) && isDigit(s[end+1])) {
			continue
		}
		if validSSN(s[i:i+3], s[i+4:i+6], s[i+7:end]) {
			return true
		}
	}
	return false
}

// fits reports whether s has shape, where 'd' is any ASCII digit and any
// other byte stands for itself.
func fits(s, shape string) bool {
	for k := range len(shape) {
		if shape[k] == 'd' && !isDigit(s[k]) || shape[k] != 'd' && s[k] != shape[k] {
			return false
		}
	}
	return true
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// hasToken reports whether s contains v (case-insensitively) as a whole
// token: not preceded or followed by a letter or digit.
func hasToken(s, v string) bool {
	ls, lv := strings.ToLower(s), strings.ToLower(v)
	for i := 0; ; {
		j := strings.Index(ls[i:], lv)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(lv)
		before, _ := utf8.DecodeLastRuneInString(ls[:start])
		after, _ := utf8.DecodeRuneInString(ls[end:])
		if (start == 0 || !isAlnum(before)) && (end == len(ls) || !isAlnum(after)) {
			return true
		}
		i = start + 1
	}
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// part is one named part of a rendered message, for the scan.
type part struct{ name, text string }

// findIdentifier scans the rendered parts of a message for identifiers
// that must never leave carenotify in a message: anything shaped like a
// Social Security number (NNN-NN-NNNN, see [validSSN]), and the
// patient's business identifiers (MRN, ...) carried on ev, whole, at
// least [minIdentifierLen] characters. It returns the kind of identifier
// and the part it is in, which are not PHI, or ok false.
func findIdentifier(ev *eventsv1.ClinicalEvent, parts ...part) (kind, where string, ok bool) {
	for _, p := range parts {
		if hasSSN(p.text) {
			return identifierSSN, p.name, true
		}
		for _, id := range ev.GetPatient().GetIdentifiers() {
			if v := strings.TrimSpace(id.GetValue()); len(v) >= minIdentifierLen && hasToken(p.text, v) {
				return identifierPatient, p.name, true
			}
		}
	}
	return "", "", false
}

// blockIdentifiers scans a rendered message before it is handed to a
// channel. On a hit the step is recorded as blocked (audit
// message.decided suppressed blocked_identifier, with the kind of
// identifier and the part, never the content), counted and logged
// without data, and blocked is true: the message must not be sent.
func (s *Service) blockIdentifiers(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, step audit.Object, ch catalog.Channel, template string, parts ...part) (blocked bool, err error) {
	kind, where, found := findIdentifier(ev, parts...)
	if !found {
		return false, nil
	}
	if err := s.decided(ctx, ev, j, step, audit.OutcomeSuppressed, outcomeBlocked,
		"channel", string(ch), "template", template, "identifier", kind, "part", where); err != nil {
		return true, err
	}
	s.countOn(j, ch, outcomeBlocked)
	s.blocked.WithLabelValues(j.ID, string(ch), kind).Inc()
	s.logger.WarnContext(ctx, "message blocked: an identifier is in its rendered content",
		"tenant", ev.GetTenant(), "eventId", ev.GetEventId(), "journey", j.ID, "step", step.ID,
		"template", template, "identifier", kind, "part", where)
	return true, nil
}
