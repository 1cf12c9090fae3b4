package fhirnotifytest

import "testing"

// CanaryEmail is the synthetic email address added to the Patient of
// AppointmentNotification. It must never appear in a log line.
const CanaryEmail = "canary.ingest.5d1e@example.org"

// Base is the FHIR base URL of the imaginary EHR in built notifications.
const Base = "https://fhirserver.org/fhir"

// Options change the built notification. The zero value keeps the corpus
// resources as they are (plus the canary email).
type Options struct {
	// Status replaces Appointment.status ("booked" in the corpus).
	Status string
	// VersionID and LastUpdated set Appointment.meta (absent in the corpus).
	VersionID, LastUpdated string
	// WithoutPatient leaves the Patient entry out of the Bundle.
	WithoutPatient bool
	// Start replaces Appointment.start (a FHIR instant).
	Start string
	// IdentifierSystem and IdentifierValue, when set, give the
	// Appointment one business identifier (it has none in the corpus).
	IdentifierSystem, IdentifierValue string
}

// BookedOptions are the options of testdata/appointment-booked-notification.json:
// the corpus appointment, booked, as version 1.
var BookedOptions = Options{VersionID: "1", LastUpdated: "2013-12-01T10:00:00Z"}

// AppointmentNotification builds an R4 backport event-notification Bundle
// carrying the corpus Appointment "2docs" and its Patient "example" as full
// resources (see the package documentation).
func AppointmentNotification(tb testing.TB, o Options) []byte {
	tb.Helper()
	bundle := readObject(tb, EmptyBundle)
	bundle.set("id", "carenotify-appointment-notification")
	status := bundle.get("entry").([]any)[0].(*object)
	params := status.get("resource").(*object)
	for _, p := range params.get("parameter").([]any) {
		p := p.(*object)
		switch p.get("name") {
		case "subscription":
			p.set("valueReference", obj("reference", Base+"/Subscription/appointments"))
		case "topic":
			p.set("valueCanonical", "http://fhirserver.org/topics/appointment-booked")
		case "notification-event":
			p.set("part", append(p.get("part").([]any),
				obj("name", "focus", "valueReference", obj("reference", Base+"/Appointment/2docs"))))
		}
	}
	status.set("request", obj("method", "GET", "url", Base+"/Subscription/appointments/$status"))

	appt := readObject(tb, AppointmentFile)
	if o.Status != "" {
		appt.set("status", o.Status)
	}
	if o.Start != "" {
		appt.set("start", o.Start)
	}
	if o.IdentifierValue != "" {
		appt.set("identifier", []any{obj("system", o.IdentifierSystem, "value", o.IdentifierValue)})
	}
	if o.VersionID != "" || o.LastUpdated != "" {
		meta := obj()
		if o.VersionID != "" {
			meta.set("versionId", o.VersionID)
		}
		if o.LastUpdated != "" {
			meta.set("lastUpdated", o.LastUpdated)
		}
		withMeta := obj("resourceType", appt.get("resourceType"), "id", appt.get("id"), "meta", meta)
		for _, k := range appt.keys {
			withMeta.set(k, appt.get(k))
		}
		appt = withMeta
	}
	entries := []any{status, obj(
		"fullUrl", Base+"/Appointment/2docs",
		"resource", appt,
		"request", obj("method", "PUT", "url", "Appointment/2docs"),
		"response", obj("status", "200"),
	)}

	if !o.WithoutPatient {
		patient := readObject(tb, PatientFile)
		patient.set("telecom", append(patient.get("telecom").([]any),
			obj("system", "email", "value", CanaryEmail, "use", "home")))
		entries = append(entries, obj(
			"fullUrl", Base+"/Patient/example",
			"resource", patient,
			"request", obj("method", "GET", "url", "Patient/example"),
			"response", obj("status", "200"),
		))
	}
	bundle.set("entry", entries)
	b, err := indent(bundle)
	if err != nil {
		tb.Fatalf("build notification: %v", err)
	}
	return b
}
