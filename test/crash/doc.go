// Package crash holds the ingest crash test (issue 3, "Tests"): HL7 v2
// messages over MLLP and FHIR notifications over HTTP are sent while the
// ingest process is killed with SIGKILL and restarted, the senders retrying
// whatever was not acknowledged; afterwards every acknowledged event must be
// in EHR_EVENTS exactly once.
//
// It also holds the email crash test (issue 5, "Tests"): 2,000 Sends
// through the email binary while it is killed and restarted, delivered to
// a go-smtp sink with STARTTLS; afterwards no message is missing, and
// every duplicate at the sink is one the service recorded as an uncertain
// resend (see the email README, "What is guaranteed across crashes").
//
// And the journey kill test (issue 4, "Tests"): 1,000 bookings (10,000
// with CARENOTIFY_CRASH_TIMERS=10000, the count) through
// the development stack each plan a durable journey timer (a JetStream
// message schedule) that sends an email when it fires; while they fall
// due, the journey process is killed with SIGKILL and restarted five
// times. Every booking's email must reach the inbox exactly once; Sends
// repeated after a kill carry the same idempotency key and the email
// service answers them as duplicates.
package crash
