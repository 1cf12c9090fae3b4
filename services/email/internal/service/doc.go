// Package service wires the email service together: NATS JetStream (the
// outbox and DELIVERY streams), Redis (idempotency keys and delivery
// records), the SMTP relay, the gRPC API, the delivery workers and the
// operational HTTP endpoints, run until the context is cancelled.
package service
