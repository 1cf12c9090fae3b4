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
package crash
