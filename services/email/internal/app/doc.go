// Package app holds the email service's use cases: accepting a message
// ([Service.Send]), reporting its delivery record ([Service.GetStatus]) and
// delivering it from the outbox ([Worker.Process]), and recording what comes
// back after delivery: one-click unsubscribes, asynchronous bounces and
// complaints ([Feedback]).
//
// It owns the interfaces its adapters implement ([Store], [Outbox],
// [Events], [Mailer]) and imports no transport or client library. Errors it
// returns never contain PHI: the server maps them to gRPC codes, the worker's
// outcomes become delivery records and DELIVERY events.
//
// The flow follows ARCHITECTURE.md ("Data flow", step 3): Send answers only
// after the message is stored durably in the JetStream outbox; a worker
// delivers it over SMTP to the configured relay with STARTTLS and a verified
// certificate (45 CFR §164.312(e)(1), transmission security) and publishes
// delivery.<tenant>.email.<status> events.
package app
