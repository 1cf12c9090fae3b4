// Package waits keeps the markers of journey instances waiting for an
// event (a wait_for step) in Redis; it implements app.Waits.
//
// Key names carry the instance hash (16 hex digits of SHA-256 of
// "tenant|journey|subject_ref", app.InstanceKey), never a resource or
// patient id. The marker's value holds the event the instance continues
// with (PHI) and is sealed with pkg/envelope through store.SetSealed,
// bound to its tenant and key. The claim says who answered the wait — the
// event or its timeout — so exactly one of them continues the instance.
//
//	cn:{<tenant>}:wait:<journey>:<instance>              marker (JSON, sealed), timeout + 7 days
//	cn:{<tenant>}:waitclaim:<journey>:<instance>:<step>  "arrived" or "timed_out", timeout + 7 days
package waits
