// Package natsbus stores ingest's output in NATS JetStream through
// pkg/bus: ClinicalEvents on EHR_EVENTS (ehr.<tenant>.<kind>.<action>) and
// rejected input on EHR_DEAD (dead.ehr.<tenant>.<source>), each with a
// deterministic Nats-Msg-Id and PHI-free routing headers. See
// ARCHITECTURE.md, "Streams and subjects".
package natsbus
