// Package queue is the sms service's JetStream side: the outbox work queue
// (OUTBOX_SMS, outbox.sms.<tenant>) whose messages are sealed
// (pkg/envelope, kind "sms-outbox", bound to tenant and message id), the
// DELIVERY events (delivery.<tenant>.sms.<status>), the dead-letter
// stream SMS_DEAD for outbox messages refused as tampered or not sealed,
// and the handler that opens outbox messages for the worker.
package queue
