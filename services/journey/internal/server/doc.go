// Package server is the journey service's transport layer: the EHR_EVENTS
// consumer handler (events.go), the fired-timer handler of JOURNEY_TIMERS
// (timers.go), carenotify.journey.v1.AdminService over
// gRPC (grpc.go) and the same journey list as HTTP/JSON (http.go). Each
// decodes its input, calls internal/app, and maps app errors onto its
// transport once.
package server
