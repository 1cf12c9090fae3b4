package log_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/log"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    slog.Level
		wantErr bool
	}{
		{name: "debug", give: "debug", want: slog.LevelDebug},
		{name: "info", give: "info", want: slog.LevelInfo},
		{name: "warn", give: "warn", want: slog.LevelWarn},
		{name: "error", give: "error", want: slog.LevelError},
		{name: "upper case", give: "DEBUG", want: slog.LevelDebug},
		{name: "mixed case", give: "Warn", want: slog.LevelWarn},
		{name: "empty", give: "", wantErr: true},
		{name: "warning", give: "warning", wantErr: true},
		{name: "number", give: "-4", wantErr: true},
		{name: "padded", give: " info", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := log.ParseLevel(tt.give)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseLevel(%q) error = %v, wantErr %v", tt.give, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseLevel(%q) (-want +got):\n%s", tt.give, diff)
			}
		})
	}
}

func TestNew(t *testing.T) {
	var buf bytes.Buffer
	l := log.New(&buf, slog.LevelInfo, "ingest")
	l.Debug("dropped")
	l.Info("event received", "tenant", "acme", "email", "x")
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("decode %q: %v", buf.String(), err)
	}
	delete(got, slog.TimeKey)
	want := map[string]any{
		"level": "INFO", "msg": "event received", "service": "ingest",
		"tenant": "acme", "email": log.Redacted,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// A synthetic patient. None of it is real.
const (
	canaryName    = "Zyxwvut Canarytest"
	canaryEmail   = "canary.patient.7f3a@example.org"
	canaryE164    = "+15559870123"
	canaryUSPhone = "(555) 987-0123"
	canaryMRN     = "MRN-CANARY-99812"
	canaryDOB     = "1961-04-13"
	canarySSN     = "123-45-6789"
	canaryStreet  = "1 Canarytest Lane"
	canaryCity    = "Zyxwvutville"
)

// canaryPatient is a domain type with a LogValue method that gets it right
// for the fields it names and relies on the handler for the free text.
type canaryPatient struct {
	ref, name, email, phone, mrn, dob, note string
}

func (p canaryPatient) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("ref", p.ref),
		slog.String("name", p.name),
		slog.String("email", p.email),
		slog.String("mrn", p.mrn),
		slog.String("birthDate", p.dob),
		slog.String("note", p.note),
		slog.Any("display", log.PHI(p.name)),
	)
}

// fhirPatient is a struct logged with slog.Any, the shape of a careless call
// site; its JSON field names carry the key rule.
type fhirPatient struct {
	ID        string              `json:"id"`
	Name      []map[string]any    `json:"name"`
	Telecom   []map[string]string `json:"telecom"`
	BirthDate string              `json:"birthDate"`
	Address   []map[string]any    `json:"address"`
	Note      string              `json:"note"`
}

// TestCanaryPatient logs a synthetic patient through New in every shape the
// services use and checks that none of its identifiers reach the output.
func TestCanaryPatient(t *testing.T) {
	var buf bytes.Buffer
	l := log.New(&buf, slog.LevelDebug, "canary")
	p := canaryPatient{
		ref: "Patient/canary-1", name: canaryName, email: canaryEmail, phone: canaryE164,
		mrn: canaryMRN, dob: canaryDOB, note: "prefers " + canaryUSPhone + " or " + canaryEmail,
	}
	lookupErr := fmt.Errorf("match patient by ssn %s: %w", canarySSN, errors.New("not found"))

	shapes := []func(){
		// Flat attributes under PHI keys.
		func() {
			l.Info("patient upserted",
				"patient_ref", p.ref, "name", canaryName, "email", canaryEmail,
				"phone", canaryE164, "mrn", canaryMRN, "birthDate", canaryDOB,
				"address", canaryStreet+", "+canaryCity)
		},
		// Identifiers in the message and in free-text values.
		func() {
			l.Warn("bounce for "+canaryEmail+", retry "+canaryUSPhone, "note", "sms "+canaryE164+" failed")
			l.Info(fmt.Sprintf("rendered reminder for %v", log.PHI(canaryName)))
		},
		// Groups, nested, including a group under a PHI key.
		func() {
			l.Info("delivery",
				slog.Group("delivery", slog.String("to", canaryEmail), slog.String("message_id", "m-1"),
					slog.Group("meta", slog.String("fallback", canaryE164))),
				slog.Group("address", slog.String("line", canaryStreet), slog.String("city", canaryCity)),
				slog.Group("identifier", slog.String("system", "urn:mrn"), slog.String("value", canaryMRN)),
			)
		},
		// With and WithGroup.
		func() {
			l.With("email", canaryEmail, "tenant", "acme").WithGroup("req").With("recipient", canaryName).
				Info("send", "contact", canaryUSPhone, "note", "to "+canaryE164)
			l.WithGroup("patient").Info("loaded", "displayName", canaryName, "dob", canaryDOB)
		},
		// Errors, directly and wrapped.
		func() {
			l.Error("lookup failed", "err", lookupErr)
			l.Error("lookup failed", slog.Any("error", fmt.Errorf("ingest: %w", lookupErr)))
		},
		// LogValuer structs, values and pointers.
		func() {
			l.Info("patient", "p", p)
			l.Info("patient", "p", &p)
			l.Info("patient", "who", log.PHI(canaryName))
		},
		// A struct logged whole.
		func() {
			l.Debug("resource", "resource", fhirPatient{
				ID:        "canary-1",
				Name:      []map[string]any{{"given": []string{"Zyxwvut"}, "family": "Canarytest"}},
				Telecom:   []map[string]string{{"system": "email", "value": canaryEmail}},
				BirthDate: canaryDOB,
				Address:   []map[string]any{{"line": []string{canaryStreet}, "city": canaryCity}},
				Note:      "ssn " + canarySSN,
			})
		},
	}
	for _, shape := range shapes {
		shape()
	}

	out := buf.String()
	for _, id := range []string{
		"Zyxwvut", "Canarytest", canaryEmail, "canary.patient",
		canaryE164, "5559870123", "987-0123", canaryMRN,
		canaryDOB, canarySSN, canaryStreet, canaryCity,
	} {
		if strings.Contains(out, id) {
			t.Errorf("output contains %q:\n%s", id, out)
		}
	}

	// The test must not pass on empty or broken output: every call wrote one
	// valid line, and the safe fields survived.
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		lines++
		if !json.Valid(sc.Bytes()) {
			t.Errorf("invalid JSON line: %s", sc.Bytes())
		}
	}
	if lines != 12 {
		t.Errorf("got %d lines; want 12:\n%s", lines, out)
	}
	for _, kept := range []string{`"service":"canary"`, `"patient_ref":"Patient/canary-1"`, `"message_id":"m-1"`, `"ref":"Patient/canary-1"`, `"id":"canary-1"`} {
		if !strings.Contains(out, kept) {
			t.Errorf("output lacks %s:\n%s", kept, out)
		}
	}
}
