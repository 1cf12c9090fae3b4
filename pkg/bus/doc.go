// Package bus holds carenotify's NATS JetStream conventions on top of the
// nats.go jetstream package: connecting, declaring the streams idempotently,
// publishing with a deterministic Nats-Msg-Id (so JetStream drops
// duplicates within the stream's window), and durable pull consumers with
// explicit acknowledgement.
//
// Subjects and headers carry routing metadata only, never PHI: tenant, kind,
// action, channel, status. See ARCHITECTURE.md, "Streams and subjects".
package bus
