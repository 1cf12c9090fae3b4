package catalog

import (
	"errors"
	"time"
)

// Data is what a template sees as "." when it is rendered for one event.
// It holds only what messages need (minimum necessary): no contact points,
// identifiers, birth date or the original EHR resource. The service README
// documents every field.
type Data struct {
	// Tenant the event belongs to.
	Tenant string
	// Patient the message is for.
	Patient Patient
	// Appointment is set for appointment events and nil otherwise, so
	// {{with .Appointment}} tests for it and using it on another event is a
	// render error rather than a message with a made-up date.
	Appointment *Appointment
	// Event is the event that triggered the journey.
	Event Event
}

// Patient is the patient as templates see them. PHI.
type Patient struct {
	// GivenName is the first given name, for a greeting.
	GivenName string
	// FamilyName is the family name.
	FamilyName string
	// Language is the preferred language as a BCP-47 tag, e.g. "en", "es-MX".
	Language string
}

// Appointment is an appointment as templates see it. PHI.
type Appointment struct {
	// Start and End of the appointment; format them with date and time.
	Start, End time.Time
	// ServiceType is the display text of the service, e.g. "Physiotherapy".
	ServiceType string
	// Description is the EHR's free-text description.
	Description string
	// Participants are the display names of practitioners and locations.
	Participants []string
}

// Event describes the triggering event.
type Event struct {
	// Kind and Action, e.g. "appointment" and "booked".
	Kind, Action string
	// OccurredAt is when the change happened in the EHR, or the zero time.
	OccurredAt time.Time
}

// Layouts of the template functions date and time.
const (
	DateLayout = "Monday, January 2, 2006"
	TimeLayout = "3:04 PM"
)

var errNoTime = errors.New("the time is not set in this event")

// funcs returns the template functions, formatting in loc.
func funcs(loc *time.Location) map[string]any {
	format := func(layout string) func(time.Time) (string, error) {
		return func(t time.Time) (string, error) {
			if t.IsZero() {
				return "", errNoTime
			}
			return t.In(loc).Format(layout), nil
		}
	}
	return map[string]any{
		"date": format(DateLayout),
		"time": format(TimeLayout),
	}
}

// sampleData is synthetic data every template is rendered with at load, so
// a misspelt field or a bad function call is found before any event comes.
func sampleData() Data {
	start := time.Date(2030, time.March, 4, 14, 30, 0, 0, time.UTC)
	return Data{
		Tenant:  "sample",
		Patient: Patient{GivenName: "Sam", FamilyName: "Sample", Language: "en"},
		Appointment: &Appointment{
			Start: start, End: start.Add(30 * time.Minute),
			ServiceType: "Sample service", Description: "Sample description",
			Participants: []string{"Sample clinic"},
		},
		Event: Event{Kind: "appointment", Action: "booked", OccurredAt: start.Add(-72 * time.Hour)},
	}
}
