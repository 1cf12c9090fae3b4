package app

import (
	"testing"
)

func TestAppointmentAction(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string // "" for no event
	}{
		{name: "booked", give: "booked", want: "booked"},
		{name: "cancelled", give: "cancelled", want: "cancelled"},
		{name: "noshow", give: "noshow", want: "noshow"},
		{name: "entered in error", give: "entered-in-error", want: ""},
		{name: "proposed", give: "proposed", want: ""},
		{name: "fulfilled", give: "fulfilled", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := appointmentAction(tt.give)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("appointmentAction(%q) = %q, %v; want %q", tt.give, got, ok, tt.want)
			}
		})
	}
}

func TestEventID(t *testing.T) {
	tests := []struct {
		name string
		give [4]string
		want string
	}{
		// sha256("fhir|demo|Appointment/2docs|1|booked"), first 32 hex digits.
		{name: "version", give: [4]string{"demo", "Appointment/2docs", "1", "booked"}, want: "c17b9324952dbd0ac24e0a8836457fbb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EventID(tt.give[0], tt.give[1], tt.give[2], tt.give[3]); got != tt.want {
				t.Errorf("EventID(%q) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}
