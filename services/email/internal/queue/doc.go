// Package queue is the email service's JetStream adapter: the outbox work
// queue behind Send (stream OUTBOX_EMAIL, subjects outbox.email.<tenant>),
// the durable consumer that feeds the delivery workers, the delivery status
// events on the DELIVERY stream (delivery.<tenant>.email.<status>,
// carenotify.delivery.v1.DeliveryEvent) and the dead letters of refused
// outbox messages (stream EMAIL_DEAD, dead.email.<tenant>).
//
// Outbox messages carry PHI (recipient, subject, bodies). [Outbox.Enqueue]
// seals them with pkg/envelope (AES-256-GCM under the tenant's data key of
// the day) before they reach JetStream, bound to tenant, kind
// envelope.KindEmailOutbox and message id; [Handler] opens them with the
// same binding, taken from the subject and the Cn-Message-Id header. The
// app package never sees ciphertext or keys. Subjects and headers carry
// tenant, channel and message id only.
package queue
