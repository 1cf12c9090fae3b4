// Package service wires the ingest service together: NATS JetStream (the
// EHR_EVENTS and EHR_DEAD streams), the app, and one HTTP server for the
// FHIR endpoints and /metrics, /healthz, /readyz, run until the context is
// cancelled.
package service
