// Package service wires the email service together: NATS JetStream (the
// outbox, DELIVERY and EMAIL_DEAD streams, and the CN_DATA_KEYS bucket of
// the envelope Sealer that seals the outbox), Redis (idempotency keys and
// delivery records), the SMTP relay, the gRPC API, the delivery workers and
// the operational HTTP endpoints, run until the context is cancelled.
package service
