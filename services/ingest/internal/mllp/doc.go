// Package mllp is ingest's HL7 v2 transport: a TCP (optionally TLS)
// listener speaking the Minimal Lower Layer Protocol (HL7 v2.5.1 appendix
// C.4, framing in pkg/hl7/mllp). It reads frames, hands each message or
// batch to the app, and answers with the acknowledgement (HL7 v2.5.1
// section 2.9) built from the app's outcome. The mapping from outcomes to
// acknowledgement codes lives in ack.go and nowhere else.
//
// MLLP has no sender authentication: every connection belongs to the one
// configured source. Telling sources apart by mTLS client certificate is
// future work.
package mllp
