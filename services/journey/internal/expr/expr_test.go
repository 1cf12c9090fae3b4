package expr_test

import (
	"strings"
	"testing"
	"time"

	"github.com/carenotify/carenotify/services/journey/internal/expr"
)

var start = time.Date(2031, 5, 6, 15, 45, 0, 0, time.UTC)

func vars() expr.Vars {
	return expr.Vars{
		Event: expr.Event{Kind: "appointment", Action: "booked", Subject: "Appointment/1", Appointment: expr.Appointment{
			Status: "booked", Start: start, End: start.Add(30 * time.Minute), ServiceType: "Physiotherapy",
		}},
		Patient: expr.Patient{Age: 40, Language: "en", HasEmail: true},
		Now:     start.Add(-48 * time.Hour),
	}
}

func TestBool(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    bool
		wantErr bool
	}{
		{name: "adult", give: `patient.age >= 18 && event.appointment.service_type != "telehealth"`, want: true},
		{name: "future", give: `event.appointment.start > now`, want: true},
		{name: "window", give: `event.appointment.start - duration("72h") > now`, want: false},
		{name: "has phone", give: `patient.has_phone`, want: false},
		{name: "kind", give: `event.kind == "appointment" && event.action in ["booked", "rescheduled"]`, want: true},
		{name: "failed conversion", give: `int(patient.language) > 0`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, err := expr.Compile(tt.give, expr.Bool)
			if err != nil {
				t.Fatalf("Compile(%q) = %v", tt.give, err)
			}
			got, err := x.Bool(vars())
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("Bool() = %t, %v; want %t, error %t", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestTime(t *testing.T) {
	x, err := expr.Compile(`event.appointment.start - duration("24h")`, expr.Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	got, err := x.Time(vars())
	if err != nil || !got.Equal(start.Add(-24*time.Hour)) {
		t.Errorf("Time() = %v, %v; want %v", got, err, start.Add(-24*time.Hour))
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
		want expr.Type
		msg  string
	}{
		{name: "unknown variable", give: `patient.age > 18 && visit.kind == "x"`, want: expr.Bool, msg: "column 21: unknown name 'visit': a condition can use only event, patient and now"},
		{name: "unknown field", give: `patient.name == "x"`, want: expr.Bool, msg: "column 8: undefined field 'name': patient has age, language, has_email and has_phone (conditions see no names, identifiers, contact points or birth date)"},
		{name: "unknown appointment field", give: `event.appointment.when > now`, want: expr.Bool, msg: "column 18: undefined field 'when': event.appointment has status, start, end and service_type"},
		{name: "time minus number", give: `event.appointment.start - 72`, want: expr.Timestamp, msg: "column 25: found no matching overload for '_-_' applied to '(timestamp, int)': '-' cannot combine a time (timestamp) and a number (int); write a span of time as duration(\"24h\") and a time as timestamp(\"2026-01-02T15:04:05Z\")"},
		{name: "syntax", give: `patient.age >= `, want: expr.Bool, msg: "column 16: this is not a valid expression"},
		{name: "not bool", give: `patient.age`, want: expr.Bool, msg: "the expression is a number (int), but it must be true or false (bool)"},
		{name: "not a time", give: `duration("24h")`, want: expr.Timestamp, msg: "the expression is a duration, but it must be a time (timestamp)"},
		{name: "second line", give: "patient.age > 18 &&\n  patient.nam == \"x\"", want: expr.Bool, msg: "line 2, column 10: undefined field 'nam': patient has age, language, has_email and has_phone (conditions see no names, identifiers, contact points or birth date)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := expr.Compile(tt.give, tt.want)
			if err == nil || !strings.HasPrefix(err.Error(), tt.msg) {
				t.Errorf("Compile(%q) = %v, want %q", tt.give, err, tt.msg)
			}
		})
	}
}

func TestAge(t *testing.T) {
	at := time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		give string
		want int
	}{
		{"1970-01-01", 56}, {"2008-06-15", 18}, {"2008-06-16", 17}, {"2008", 17}, {"2008-05", 18},
		{"", -1}, {"1970-13-01", -1}, {"1970-02-30", -1}, {"abcd", -1}, {"2030-01-01", -1},
	}
	for _, tt := range tests {
		if got := expr.Age(tt.give, at); got != tt.want {
			t.Errorf("Age(%q) = %d, want %d", tt.give, got, tt.want)
		}
	}
}
