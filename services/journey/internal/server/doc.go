// Package server is the journey service's transport layer: the EHR_EVENTS
// consumer handler (events.go), the fired-timer handler of JOURNEY_TIMERS
// (timers.go), the email opt-out handler of DELIVERY (delivery.go),
// carenotify.journey.v1.AdminService over gRPC (grpc.go, consent.go) and
// the same API as HTTP/JSON (http.go). Each decodes its input, calls
// internal/app, and maps app errors onto its transport once.
//
// The admin API is not authenticated yet: it must listen on an address
// only operators reach.
package server
