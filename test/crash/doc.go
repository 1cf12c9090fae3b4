// Package crash holds the ingest crash test (issue 3, "Tests"): HL7 v2
// messages over MLLP and FHIR notifications over HTTP are sent while the
// ingest process is killed with SIGKILL and restarted, the senders retrying
// whatever was not acknowledged; afterwards every acknowledged event must be
// in EHR_EVENTS exactly once.
package crash
