// Package app holds ingest's use case: take a FHIR notification
// ([App.Ingest]) or an HL7 v2 message or batch ([App.IngestHL7],
// [App.IngestHL7Batch]) from a source, normalise what it carries into
// carenotify.events.v1.ClinicalEvent messages, store them durably, and keep
// whatever cannot be processed in the dead-letter stream for replay (see
// ARCHITECTURE.md, "Data flow" and "Canonical event").
//
// It knows neither HTTP, MLLP nor NATS: each transport calls the app and
// maps its [Error] kinds to HTTP statuses or HL7 acknowledgment codes; a
// [Publisher] stores the results.
package app
