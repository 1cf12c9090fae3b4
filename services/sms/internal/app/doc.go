// Package app holds the sms service's use cases: accepting a text message
// (Send: validate, claim the idempotency key, queue it sealed), reporting
// its delivery record (GetStatus), delivering queued messages through the
// provider (Worker), applying the provider's delivery receipts (Receipts)
// and handling the keywords patients text back (Keywords). It imports no
// transport or client library: Redis, JetStream and the provider sit
// behind the interfaces in types.go.
//
// Phone numbers and message bodies are PHI. They exist in clear only in
// memory: queued messages are sealed (pkg/envelope), records hold none,
// and errors and log lines never quote them.
package app
