package catalog

import (
	"errors"
	"fmt"
	"strings"
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

	loc *time.Location // see In
}

// In returns d with its dates and times to be shown in loc (the patient's
// time zone). Without it a template shows them in the zone it was loaded
// with (JOURNEY_TIMEZONE).
func (d Data) In(loc *time.Location) Data {
	d.loc = loc
	return d
}

// inZone returns d with every time in d.loc, so the date and time
// functions, which format a time in its own zone, show them there.
func (d Data) inZone() Data {
	if d.loc == nil {
		return d
	}
	in := func(t time.Time) time.Time {
		if t.IsZero() {
			return t
		}
		return t.In(d.loc)
	}
	if d.Appointment != nil {
		a := *d.Appointment
		a.Start, a.End = in(a.Start), in(a.End)
		d.Appointment = &a
	}
	d.Event.OccurredAt = in(d.Event.OccurredAt)
	return d
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

// Layouts of the template functions date and time in English; see
// [dateFormats] for the others.
const (
	DateLayout = "Monday, January 2, 2006"
	TimeLayout = "3:04 PM"
)

var errNoTime = errors.New("the time is not set in this event")

// dateFormat formats dates and times in one language. Go formats day and
// month names in English only, and x/text has no date formatting, so the
// few languages templates are written in are spelt out here.
type dateFormat struct {
	date func(time.Time) string
	time func(time.Time) string
}

var (
	spanishDays   = [...]string{"domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"}
	spanishMonths = [...]string{"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"}
)

// dateFormats by base language. A language not listed gets ISO dates
// (2006-01-02) and 24-hour times (15:04), which every reader can read.
var dateFormats = map[string]dateFormat{
	"en": {
		date: func(t time.Time) string { return t.Format(DateLayout) },
		time: func(t time.Time) string { return t.Format(TimeLayout) },
	},
	"es": { // "lunes, 4 de marzo de 2030", "14:30"
		date: func(t time.Time) string {
			return fmt.Sprintf("%s, %d de %s de %d", spanishDays[t.Weekday()], t.Day(), spanishMonths[t.Month()-1], t.Year())
		},
		time: func(t time.Time) string { return t.Format("15:04") },
	},
}

var isoFormat = dateFormat{
	date: func(t time.Time) string { return t.Format("2006-01-02") },
	time: func(t time.Time) string { return t.Format("15:04") },
}

// formatFor returns the date format of a canonical language tag.
func formatFor(lang string) dateFormat {
	base, _, _ := strings.Cut(lang, "-")
	if f, ok := dateFormats[base]; ok {
		return f
	}
	return isoFormat
}

// funcs returns the template functions for a template written in lang.
// date and time format a time in its own zone: [Template.Render] puts the
// data's times in the zone they are to be shown in.
func funcs(lang string) map[string]any {
	f := formatFor(lang)
	format := func(fn func(time.Time) string) func(time.Time) (string, error) {
		return func(t time.Time) (string, error) {
			if t.IsZero() {
				return "", errNoTime
			}
			return fn(t), nil
		}
	}
	return map[string]any{
		"date": format(f.date),
		"time": format(f.time),
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
