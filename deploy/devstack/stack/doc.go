// Package stack runs the whole of carenotify on one machine: an embedded
// NATS JetStream server, Redis (REDIS_URL or a redis-server it starts), the
// development inbox (an SMTP server with STARTTLS and a web page), and the
// five services built from this checkout and run as separate processes with
// prefixed logs. `make run` uses it through cmd/devstack, and the
// end-to-end tests use it with free ports and a temporary directory.
package stack
