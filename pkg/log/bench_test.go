package log_test

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/log"
)

func BenchmarkLog(b *testing.B) {
	errTimeout := errors.New("smtp: 421 try again later")
	clean := func(l *slog.Logger) {
		l.Info("message delivered",
			"tenant", "acme",
			"event_id", "123e4567-e89b-12d3-a456-426614174000",
			"patient_ref", "Patient/123",
			"message_id", "01HZX3Q9V7T2K8M4N6P0R5S1W3",
			"channel", "email",
			"attempt", 2,
			"took", 1234*time.Microsecond,
			"at", "2024-05-01T12:34:56.123456789Z",
		)
	}
	// Errors are always re-encoded as their redacted text, so a record with
	// an error is always rebuilt.
	withError := func(l *slog.Logger) {
		l.Warn("delivery deferred",
			"tenant", "acme",
			"message_id", "01HZX3Q9V7T2K8M4N6P0R5S1W3",
			"attempt", 2,
			"err", errTimeout,
		)
	}
	phi := func(l *slog.Logger) {
		l.Info("message delivered to canary.patient.7f3a@example.org",
			"tenant", "acme",
			"event_id", "123e4567-e89b-12d3-a456-426614174000",
			"to", "canary.patient.7f3a@example.org",
			"name", "Zyxwvut Canarytest",
			"note", "fallback sms +15559870123 or (555) 987-0123",
			"attempt", 2,
			"took", 1234*time.Microsecond,
			"err", errTimeout,
		)
	}
	loggers := []struct {
		name string
		l    *slog.Logger
	}{
		{name: "plain", l: slog.New(slog.NewJSONHandler(io.Discard, nil)).With("service", "bench")},
		{name: "redacting", l: log.New(io.Discard, slog.LevelInfo, "bench")},
	}
	for _, lg := range loggers {
		b.Run("clean/"+lg.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				clean(lg.l)
			}
		})
		b.Run("error/"+lg.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				withError(lg.l)
			}
		})
		b.Run("phi/"+lg.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				phi(lg.l)
			}
		})
	}
}
