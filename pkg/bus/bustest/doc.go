// Package bustest starts a real embedded NATS JetStream server for tests, on
// a free port with its store in the test's temporary directory.
package bustest
