// Package app holds ingest's use case: take a notification from an
// authenticated source, normalise what it carries into
// carenotify.events.v1.ClinicalEvent messages, store them durably, and keep
// whatever cannot be processed in the dead-letter stream for replay (see
// ARCHITECTURE.md, "Data flow" and "Canonical event").
//
// It knows neither HTTP nor NATS: the transport calls [App.Ingest] and
// maps its [Error] kinds to statuses; a [Publisher] stores the results.
package app
