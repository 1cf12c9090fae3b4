package catalog

import (
	"slices"
	"strings"
)

// FieldClass says what kind of information a field of an event is, which
// decides where it may appear. The classes and the fields in each are the
// field catalogue, [Fields]; services/journey/README.md lists it too (a
// test keeps the two the same).
type FieldClass string

// Field classes.
const (
	// ClassIdentifying fields name the patient or identify their record
	// (names, ids, medical record numbers, birth date).
	ClassIdentifying FieldClass = "identifying"
	// ClassContact fields are how to reach the patient (addresses, phone
	// numbers). Templates never see them: the channel puts them on the
	// envelope.
	ClassContact FieldClass = "contact"
	// ClassPreference fields are the patient's choices, such as language.
	ClassPreference FieldClass = "preference"
	// ClassScheduling fields are dates and times.
	ClassScheduling FieldClass = "scheduling"
	// ClassSensitiveClinical fields say something about the patient's
	// health or care: the kind of service, who treats them, free text from
	// the record, results. SMS templates and email notices (security:
	// no-phi) may not use them.
	ClassSensitiveClinical FieldClass = "sensitive-clinical"
	// ClassAdministrative fields describe the message's context, not the
	// patient (tenant, kind of event).
	ClassAdministrative FieldClass = "administrative"
)

// FieldInfo is one field of the catalogue.
type FieldInfo struct {
	// Name is what templates declare in fields:, e.g. "patient.given_name".
	Name string
	// Class says what kind of information it is.
	Class FieldClass
	// Template is how a template writes it, e.g. ".Patient.GivenName", or
	// "" when templates cannot use it at all.
	Template string
	// Meaning is a short description for the README.
	Meaning string
}

// fieldCatalogue is every field of an event, the ones templates may use
// and the ones they never see, classed. Order: as the README lists them.
var fieldCatalogue = []FieldInfo{
	{"tenant", ClassAdministrative, ".Tenant", "the hospital or organisation the event belongs to"},
	{"patient.given_name", ClassIdentifying, ".Patient.GivenName", "first given name"},
	{"patient.family_name", ClassIdentifying, ".Patient.FamilyName", "family name"},
	{"patient.language", ClassPreference, ".Patient.Language", "preferred language, BCP-47"},
	{"event.kind", ClassAdministrative, ".Event.Kind", "e.g. appointment, lab_result"},
	{"event.action", ClassAdministrative, ".Event.Action", "e.g. booked, final"},
	{"event.occurred_at", ClassScheduling, ".Event.OccurredAt", "when the change happened in the EHR"},
	{"event.appointment.start", ClassScheduling, ".Appointment.Start", "start of the appointment"},
	{"event.appointment.end", ClassScheduling, ".Appointment.End", "end of the appointment"},
	{"event.appointment.service_type", ClassSensitiveClinical, ".Appointment.ServiceType", "the kind of care (\"Oncology\", \"Psychiatry\") can reveal a condition"},
	{"event.appointment.participants", ClassSensitiveClinical, ".Appointment.Participants", "practitioners and locations: a clinic's or specialist's name can reveal a condition"},
	{"event.appointment.description", ClassSensitiveClinical, ".Appointment.Description", "the EHR's free text: may hold the reason for the visit"},
	{"patient.id", ClassIdentifying, "", "the patient's logical id in the EHR"},
	{"patient.identifiers", ClassIdentifying, "", "medical record number and other business identifiers"},
	{"patient.birth_date", ClassIdentifying, "", "date of birth"},
	{"patient.emails", ClassContact, "", "email addresses"},
	{"patient.phones", ClassContact, "", "phone numbers"},
	{"event.original", ClassSensitiveClinical, "", "the resource or message exactly as the EHR sent it"},
}

// Fields returns the field catalogue: every field of an event with its
// class, including those templates never see (Template == "").
func Fields() []FieldInfo { return slices.Clone(fieldCatalogue) }

// fieldByName returns the catalogue entry of a declared name.
func fieldByName(name string) (FieldInfo, bool) {
	i := slices.IndexFunc(fieldCatalogue, func(f FieldInfo) bool { return f.Name == name })
	if i < 0 {
		return FieldInfo{}, false
	}
	return fieldCatalogue[i], true
}

// fieldByPath returns the catalogue entry a template path (field names
// after the root, e.g. ["Appointment", "Start", "Year"]) reads, and how many
// of its elements name it: the rest are methods or fields of its value
// (a time's Year). ok is false when no template field is a prefix of path.
func fieldByPath(path []string) (f FieldInfo, n int, ok bool) {
	for _, c := range fieldCatalogue {
		if c.Template == "" {
			continue
		}
		parts := strings.Split(strings.TrimPrefix(c.Template, "."), ".")
		if len(parts) <= len(path) && slices.Equal(parts, path[:len(parts)]) {
			return c, len(parts), true
		}
	}
	return FieldInfo{}, 0, false
}

// fieldsUnder returns the template fields inside a group such as
// ["Appointment"] (every field when path is empty, the template's whole
// data), or nil when path is not a group.
func fieldsUnder(path []string) []FieldInfo {
	var out []FieldInfo
	for _, c := range fieldCatalogue {
		if c.Template == "" {
			continue
		}
		parts := strings.Split(strings.TrimPrefix(c.Template, "."), ".")
		if len(parts) > len(path) && slices.Equal(parts[:len(path)], path) {
			out = append(out, c)
		}
	}
	return out
}

// templateFieldNames returns the names templates may declare, for messages.
func templateFieldNames() []string {
	var out []string
	for _, c := range fieldCatalogue {
		if c.Template != "" {
			out = append(out, c.Name)
		}
	}
	return out
}

// restrictedFor returns why a template may not use a field of class c,
// or "" when it may: SMS templates and email notices (security: no-phi)
// carry nothing sensitive-clinical.
func restrictedFor(c FieldClass, ch Channel, sec Security) string {
	if c != ClassSensitiveClinical {
		return ""
	}
	switch {
	case ch == ChannelSMS:
		return "an SMS template may not use it: a text can be read on a locked phone's screen"
	case sec == SecurityNoPHI:
		return "an email notice (security: no-phi) may not use it: a notice may travel without verified encryption"
	}
	return ""
}
