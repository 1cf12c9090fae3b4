// Package queue is the email service's JetStream adapter: the outbox work
// queue behind Send (stream OUTBOX_EMAIL, subjects outbox.email.<tenant>),
// the durable consumer that feeds the delivery workers, and the delivery
// status events on the DELIVERY stream (delivery.<tenant>.email.<status>,
// carenotify.delivery.v1.DeliveryEvent).
//
// Outbox messages carry PHI (recipient, subject, bodies) as JSON and are
// NOT yet encrypted at rest: issue 6 adds envelope encryption (AES-256-GCM,
// ARCHITECTURE.md "At rest") before they reach JetStream. Subjects and
// headers carry the tenant and channel only.
package queue
