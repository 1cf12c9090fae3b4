package relay_test

import (
	"testing"

	"github.com/carenotify/carenotify/services/email/internal/relay"
	"github.com/carenotify/carenotify/services/email/internal/smtptest"
)

// BenchmarkDeliver compares one session per message with reused sessions,
// against a local STARTTLS relay with AUTH.
func BenchmarkDeliver(b *testing.B) {
	for _, bb := range []struct {
		name string
		max  int
	}{{"new session per message", 1}, {"reused sessions", 100}} {
		b.Run(bb.name, func(b *testing.B) {
			ca := smtptest.NewCA(b)
			srv := smtptest.Start(b, smtptest.Options{CA: ca, Username: "svc", Password: "s3cret"})
			r := newRelayWith(b, relay.Options{
				Host: "localhost", Port: srv.Port, Username: "svc", Password: "s3cret", RootCAs: ca.Pool,
				MaxMessagesPerConnection: bb.max,
			})
			m := message()
			for b.Loop() {
				if _, err := r.Deliver(b.Context(), verified(m)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
