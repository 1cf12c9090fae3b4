// Package e2e tests carenotify end to end: the development stack (embedded
// NATS JetStream, a real redis-server, the dev inbox as a real SMTP server
// with STARTTLS and its own CA, and the five services as separate processes
// built from this checkout) receiving real FHIR notifications.
package e2e
