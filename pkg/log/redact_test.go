package log_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"testing/slogtest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/log"
)

func TestSlogtest(t *testing.T) {
	var buf *bytes.Buffer
	slogtest.Run(t,
		func(*testing.T) slog.Handler {
			buf = new(bytes.Buffer)
			return log.NewRedactingHandler(slog.NewJSONHandler(buf, nil))
		},
		func(t *testing.T) map[string]any {
			var m map[string]any
			if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
				t.Fatalf("decode %q: %v", buf, err)
			}
			return m
		})
}

// logLine runs do against a logger through the redacting handler and returns
// the one JSON line it wrote, decoded, without its "time" and "level".
func logLine(t *testing.T, do func(*slog.Logger)) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	do(slog.New(log.NewRedactingHandler(slog.NewJSONHandler(&buf, nil))))
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("decode %q: %v", buf.String(), err)
	}
	delete(m, slog.TimeKey)
	delete(m, slog.LevelKey)
	return m
}

func TestRedactKeys(t *testing.T) {
	tests := []struct {
		name string
		give slog.Attr
		want any
	}{
		{name: "email", give: slog.String("email", "x"), want: log.Redacted},
		{name: "upper case", give: slog.String("EMAIL", "x"), want: log.Redacted},
		{name: "phone", give: slog.String("phone", "x"), want: log.Redacted},
		{name: "telecom", give: slog.String("telecom", "x"), want: log.Redacted},
		{name: "name", give: slog.String("Name", "x"), want: log.Redacted},
		{name: "given", give: slog.String("given", "x"), want: log.Redacted},
		{name: "family", give: slog.String("family", "x"), want: log.Redacted},
		{name: "snake case", give: slog.String("first_name", "x"), want: log.Redacted},
		{name: "kebab case", give: slog.String("last-name", "x"), want: log.Redacted},
		{name: "camel case", give: slog.String("fullName", "x"), want: log.Redacted},
		{name: "birthDate", give: slog.String("birthDate", "1961-04-13"), want: log.Redacted},
		{name: "dob", give: slog.String("DOB", "1961-04-13"), want: log.Redacted},
		{name: "address", give: slog.String("address", "x"), want: log.Redacted},
		{name: "mrn", give: slog.String("mrn", "x"), want: log.Redacted},
		{name: "ssn", give: slog.String("ssn", "x"), want: log.Redacted},
		{name: "identifier", give: slog.String("identifier", "x"), want: log.Redacted},
		{name: "body", give: slog.String("body", "x"), want: log.Redacted},
		{name: "text", give: slog.String("text", "x"), want: log.Redacted},
		{name: "html", give: slog.String("html", "x"), want: log.Redacted},
		{name: "subject", give: slog.String("subject", "x"), want: log.Redacted},
		{name: "to", give: slog.String("to", "x"), want: log.Redacted},
		{name: "recipient", give: slog.String("recipient", "x"), want: log.Redacted},
		{name: "patient", give: slog.String("patient", "x"), want: log.Redacted},
		{name: "contact", give: slog.String("contact", "x"), want: log.Redacted},
		{name: "non-string value", give: slog.Int("mrn", 99812), want: log.Redacted},
		{name: "time value", give: slog.Time("birthdate", time.Date(1961, 4, 13, 0, 0, 0, 0, time.UTC)), want: log.Redacted},
		{name: "dotted key, last segment", give: slog.String("recipient.email", "x"), want: log.Redacted},
		{
			name: "whole group under a PHI key",
			give: slog.Group("address", slog.String("line", "1 Main St"), slog.String("city", "x")),
			want: log.Redacted,
		},
		{
			name: "inside a group",
			give: slog.Group("req", slog.String("to", "x"), slog.String("message_id", "m-1")),
			want: map[string]any{"to": log.Redacted, "message_id": "m-1"},
		},
		{
			name: "nested groups",
			give: slog.Group("a", slog.Group("b", slog.String("phone", "x"), slog.Int("n", 1))),
			want: map[string]any{"b": map[string]any{"phone": log.Redacted, "n": float64(1)}},
		},
		{name: "patient_ref kept", give: slog.String("patient_ref", "Patient/123"), want: "Patient/123"},
		{name: "subject_ref kept", give: slog.String("subject_ref", "Patient/123"), want: "Patient/123"},
		{name: "resourceId kept", give: slog.String("resourceId", "abc"), want: "abc"},
		{name: "id kept", give: slog.String("id", "abc"), want: "abc"},
		{name: "message_id kept", give: slog.String("message_id", "m-1"), want: "m-1"},
		{name: "event_id kept", give: slog.String("event_id", "e-1"), want: "e-1"},
		{name: "tenant kept", give: slog.String("tenant", "acme"), want: "acme"},
		{name: "kind kept", give: slog.String("kind", "reminder"), want: "reminder"},
		{name: "action kept", give: slog.String("action", "send"), want: "send"},
		{name: "total kept (contains to)", give: slog.Int("total", 3), want: float64(3)},
		{name: "dotted key, earlier segment", give: slog.String("email.count", "2"), want: "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := logLine(t, func(l *slog.Logger) { l.Info("m", tt.give) })
			if diff := cmp.Diff(tt.want, m[tt.give.Key]); diff != "" {
				t.Errorf("value of %q (-want +got):\n%s", tt.give.Key, diff)
			}
		})
	}
}

func TestRedactValues(t *testing.T) {
	const r = log.Redacted
	tests := []struct {
		name string
		give string
		want string
	}{
		{name: "email", give: "canary.patient.7f3a@example.org", want: r},
		{name: "email in text", give: "sent to jane.doe+tag@mail.example.co.uk today", want: "sent to " + r + " today"},
		{name: "email in query", give: "/lookup?email=jane@example.org&x=1", want: "/lookup?email=" + r + "&x=1"},
		{name: "email, sentence end", give: "write jane@example.org.", want: "write " + r + "."},
		{name: "two emails", give: "a@example.org,b@example.org", want: r + "," + r},
		{name: "internationalised email", give: "jöhn@exämple.org", want: r},
		{name: "E.164", give: "+15559870123", want: r},
		{name: "E.164 in text", give: "sms to +15559870123 queued", want: "sms to " + r + " queued"},
		{name: "E.164 spaced", give: "+44 20 7946 0958", want: r},
		{name: "E.164 with parentheses", give: "+1 (555) 987-0123", want: r},
		{name: "E.164 dotted", give: "+1.555.987.0123", want: r},
		{name: "US parentheses", give: "(555) 987-0123", want: r},
		{name: "US parentheses no space", give: "(555)987-0123", want: r},
		{name: "US dashes", give: "call 555-987-0123.", want: "call " + r + "."},
		{name: "US dots", give: "555.987.0123", want: r},
		{name: "US spaces", give: "555 987 0123", want: r},
		{name: "US with 1", give: "1-555-987-0123", want: r},
		{name: "US with 1 and parentheses", give: "1 (555) 987-0123", want: r},
		{name: "SSN", give: "ssn 123-45-6789 on file", want: "ssn " + r + " on file"},
		{name: "phone and email", give: "555-987-0123/a@example.org", want: r + "/" + r},
		{name: "RFC3339", give: "2024-05-01T12:34:56Z", want: "2024-05-01T12:34:56Z"},
		{name: "RFC3339Nano with offset", give: "2024-05-01T12:34:56.123456789+02:00", want: "2024-05-01T12:34:56.123456789+02:00"},
		{name: "time.Time.String", give: "2024-05-01 12:34:56.123456789 +0000 UTC m=+1.234567890", want: "2024-05-01 12:34:56.123456789 +0000 UTC m=+1.234567890"},
		{name: "date", give: "1961-04-13", want: "1961-04-13"},
		{name: "duration", give: "1.234567891s", want: "1.234567891s"},
		{name: "long duration", give: "123h45m12.345678912s", want: "123h45m12.345678912s"},
		{name: "host port", give: "127.0.0.1:4222", want: "127.0.0.1:4222"},
		{name: "URL", give: "nats://127.0.0.1:4222", want: "nats://127.0.0.1:4222"},
		{name: "IP", give: "192.168.100.200", want: "192.168.100.200"},
		{name: "UUID", give: "123e4567-e89b-12d3-a456-426614174000", want: "123e4567-e89b-12d3-a456-426614174000"},
		{name: "digit UUID", give: "12345678-1234-5678-1234-567812345678", want: "12345678-1234-5678-1234-567812345678"},
		{name: "Unix time", give: "1712345678", want: "1712345678"},
		{name: "stream id", give: "1712345678123-0", want: "1712345678123-0"},
		{name: "short number", give: "42", want: "42"},
		{name: "version", give: "v1.26.8", want: "v1.26.8"},
		{name: "user at host", give: "nats://user@localhost:4222", want: "nats://user@localhost:4222"},
		{name: "handle", give: "@carenotify", want: "@carenotify"},
		{name: "FHIR reference", give: "Patient/123/_history/4", want: "Patient/123/_history/4"},
		{name: "empty", give: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := logLine(t, func(l *slog.Logger) { l.Info(tt.give, "note", tt.give) })
			want := map[string]any{"msg": tt.want, "note": tt.want}
			if diff := cmp.Diff(want, m); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

type contactValuer struct{ email, ref string }

func (c contactValuer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("email", c.email), slog.String("ref", c.ref), slog.String("note", "via "+c.email))
}

type stringValuer string

func (s stringValuer) LogValue() slog.Value { return slog.StringValue(string(s)) }

type nilPointerError struct{ msg string }

func (e *nilPointerError) Error() string { return e.msg }

type message struct {
	ID      string  `json:"id"`
	To      string  `json:"to"`
	Subject string  `json:"subject"`
	Note    string  `json:"note"`
	Tries   int     `json:"tries"`
	Patient log.PHI `json:"patientName"`
}

type emailAddress string

func TestRedactKinds(t *testing.T) {
	const r = log.Redacted
	tests := []struct {
		name string
		give any
		want any
	}{
		{name: "PHI", give: log.PHI("Zyxwvut Canarytest"), want: r},
		{name: "error", give: fmt.Errorf("lookup 123-45-6789: %w", io.EOF), want: "lookup " + r + ": EOF"},
		{name: "joined errors", give: errors.Join(errors.New("a@example.org"), io.EOF), want: r + "\nEOF"},
		{name: "Error panics", give: error((*nilPointerError)(nil)), want: "!PANIC in Error method"},
		{name: "LogValuer string", give: stringValuer("to a@example.org"), want: "to " + r},
		{
			name: "LogValuer group",
			give: contactValuer{email: "a@example.org", ref: "Patient/1"},
			want: map[string]any{"email": r, "ref": "Patient/1", "note": "via " + r},
		},
		{name: "bytes", give: []byte("call (555) 987-0123"), want: "call " + r},
		{name: "named string", give: emailAddress("a@example.org"), want: r},
		{
			name: "struct",
			give: message{ID: "m-1", To: "+15559870123", Subject: "x", Note: "ssn 123-45-6789", Tries: 2, Patient: "Zyxwvut"},
			want: map[string]any{"id": "m-1", "to": r, "subject": r, "note": "ssn " + r, "tries": float64(2), "patientName": r},
		},
		{
			name: "pointer to struct",
			give: &message{ID: "m-2", Note: "ok"},
			want: map[string]any{"id": "m-2", "to": r, "subject": r, "note": "ok", "tries": float64(0), "patientName": r},
		},
		{
			name: "map",
			give: map[string]any{"Email": "x", "kind": "reminder", "list": []any{"a@example.org", 1}},
			want: map[string]any{"Email": r, "kind": "reminder", "list": []any{r, float64(1)}},
		},
		{name: "map key", give: map[string]int{"a@example.org": 1}, want: map[string]any{r: float64(1)}},
		{name: "unsupported", give: make(chan int), want: "!ERROR:json: unsupported type: chan int"},
		{name: "int", give: 42, want: float64(42)},
		{name: "bool", give: true, want: true},
		{name: "duration", give: 1500 * time.Millisecond, want: float64(1500 * time.Millisecond)},
		{name: "time", give: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), want: "2024-05-01T12:00:00Z"},
		{name: "nil", give: nil, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := logLine(t, func(l *slog.Logger) { l.Info("m", "v", tt.give) })
			if diff := cmp.Diff(tt.want, m["v"]); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestRedactWith covers rule 4: WithAttrs and WithGroup redact like Info.
func TestRedactWith(t *testing.T) {
	const r = log.Redacted
	tests := []struct {
		name string
		give func(*slog.Logger)
		want map[string]any
	}{
		{
			name: "With key",
			give: func(l *slog.Logger) { l.With("email", "x", "tenant", "acme").Info("m") },
			want: map[string]any{"msg": "m", "email": r, "tenant": "acme"},
		},
		{
			name: "With value",
			give: func(l *slog.Logger) { l.With("note", "ssn 123-45-6789").Info("m") },
			want: map[string]any{"msg": "m", "note": "ssn " + r},
		},
		{
			name: "With LogValuer",
			give: func(l *slog.Logger) { l.With("c", contactValuer{email: "a@example.org", ref: "P/1"}).Info("m") },
			want: map[string]any{"msg": "m", "c": map[string]any{"email": r, "ref": "P/1", "note": "via " + r}},
		},
		{
			name: "WithGroup then With",
			give: func(l *slog.Logger) {
				l.WithGroup("req").With("phone", "x").Info("m", "id", "a", "note", "+15559870123")
			},
			want: map[string]any{"msg": "m", "req": map[string]any{"phone": r, "id": "a", "note": r}},
		},
		{
			name: "WithGroup named after PHI",
			give: func(l *slog.Logger) {
				l.WithGroup("patient").With("ref", "P/1").Info("m", "age", 64, slog.Group("g", "a", 1))
			},
			want: map[string]any{"msg": "m", "patient": map[string]any{"ref": r, "age": r, "g": r}},
		},
		{
			name: "inline group",
			give: func(l *slog.Logger) { l.Info("m", slog.Group("", "to", "x", "kind", "k")) },
			want: map[string]any{"msg": "m", "to": r, "kind": "k"},
		},
		{
			name: "key that is an email",
			give: func(l *slog.Logger) { l.Info("m", "a@example.org", 1) },
			want: map[string]any{"msg": "m", r: float64(1)},
		},
		{
			name: "many attributes, change after the fifth",
			give: func(l *slog.Logger) {
				l.Info("m", "a", 1, "b", 2, "c", 3, "d", 4, "e", 5, "f", 6, "email", "x", "g", 7)
			},
			want: map[string]any{
				"msg": "m", "a": float64(1), "b": float64(2), "c": float64(3), "d": float64(4),
				"e": float64(5), "f": float64(6), "email": r, "g": float64(7),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, logLine(t, tt.give)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestRedactKeepsOrder checks that redaction changes values only, not the
// order of attributes, so log lines stay diffable.
func TestRedactKeepsOrder(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(log.NewRedactingHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})))
	l.Info("m", "a", 1, "email", "x", "b", 2)
	want := "level=INFO msg=m a=1 email=[REDACTED] b=2\n"
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (h discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h discardHandler) WithGroup(string) slog.Handler           { return h }

// TestRedactNoAllocs checks the promise that a record with nothing to redact
// costs no allocation in the redacting handler.
func TestRedactNoAllocs(t *testing.T) {
	h := log.NewRedactingHandler(discardHandler{})
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "event processed at 2024-05-01T12:34:56Z", 0)
	r.AddAttrs(
		slog.String("tenant", "acme"),
		slog.String("event_id", "123e4567-e89b-12d3-a456-426614174000"),
		slog.String("patient_ref", "Patient/123"),
		slog.Duration("took", time.Millisecond),
		slog.Int("attempt", 2),
		slog.Group("bus", slog.String("stream", "carenotify.events"), slog.String("addr", "127.0.0.1:4222")),
	)
	allocs := testing.AllocsPerRun(100, func() {
		if err := h.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Handle allocated %v times per record; want 0", allocs)
	}
}
