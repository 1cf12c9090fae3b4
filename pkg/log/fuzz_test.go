package log_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/carenotify/carenotify/pkg/log"
)

// emailShape is a plain reading of "looks like an email address". The
// scanner must redact everything it matches (and may redact more).
var emailShape = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)

func FuzzRedact(f *testing.F) {
	for _, seed := range [][2]string{
		{"", ""},
		{"contact canary.patient.7f3a@example.org", "+15559870123"},
		{"(555) 987-0123", "123-45-6789"},
		{"2024-05-01T12:34:56.123456789+02:00", "127.0.0.1:4222"},
		{"123e4567-e89b-12d3-a456-426614174000", "1712345678123-0"},
		{"a@b.co@c.org", "x@y"},
		{"+1 (555) 987-0123 45678 9", "1-555-987-0123"},
		{"m=+1.234567890", "+0000 UTC"},
		{"jöhn@exämple.org", "\xff@\xfe.org"},
		{"?email=a@example.org&to=b@example.org.", "a.555-987-0123@x.org"},
		{"@@@...", "+++---((("},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, msg, val string) {
		var buf bytes.Buffer
		l := log.New(&buf, slog.LevelInfo, "fuzz")
		const canary = "canary.fuzz@example.org"
		l.Info(msg, "v", val, "w", msg+" "+canary+" "+val, slog.Group("g", "v", []byte(val)))

		out := buf.Bytes()
		if bytes.Count(out, []byte("\n")) != 1 || !json.Valid(out) {
			t.Fatalf("not one JSON line: %q", out)
		}
		if bytes.Contains(out, []byte(canary)) {
			t.Errorf("canary survived: %s", out)
		}
		for _, in := range []string{msg, val} {
			for _, m := range emailShape.FindAllString(in, -1) {
				if strings.Contains(string(out), m) {
					t.Errorf("email-shaped %q survived: %s", m, out)
				}
			}
		}
	})
}
