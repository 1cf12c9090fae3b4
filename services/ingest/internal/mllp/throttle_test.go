package mllp_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/hl7/hl7test"
	"github.com/carenotify/carenotify/pkg/log"
	"github.com/carenotify/carenotify/pkg/log/logtest"
	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/pkg/store/redisproc"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
	"github.com/carenotify/carenotify/services/ingest/internal/mllp"
	"github.com/carenotify/carenotify/services/ingest/internal/ratelimit"
)

// TestThrottle: over its rate, a sender's message is not processed and
// gets AE (CE in enhanced mode) with an ERR saying so; with the budget
// store down, the same (fail closed).
func TestThrottle(t *testing.T) {
	rs, err := redisproc.Start(t.Context(), redisproc.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Stop)
	rc, err := store.NewRedis(t.Context(), rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	limiter := ratelimit.New(rc)
	lim := config.Limits{Rate: 2, Per: time.Hour}
	rec := &recording{}
	logs := &logtest.Buffer{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := mllp.New(mllp.Options{App: rec, Source: app.Source{Name: "lab", Tenant: "north"}, MaxFrameBytes: maxFrame,
		ReadTimeout: 5 * time.Second, MaxConns: 2, Logger: log.New(logs, 0, "ingest"),
		Throttle: func(ctx context.Context, src app.Source) (bool, time.Duration, error) {
			return limiter.Allow(ctx, src.Tenant, src.Name, lim)
		}})
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })

	msg := hl7test.Read(t, "ADT_A04/msconv-ADT04-251.hl7")
	c := hl7test.Dial(t, l.Addr().String())
	for i, want := range []string{"AA", "AA", "AE"} {
		if got := parseACK(t, c.Send(t, msg)).Get("MSA-1"); got != want {
			t.Fatalf("message %d: ACK %q, want %q", i+1, got, want)
		}
	}
	raw := c.Send(t, msg)
	ack := parseACK(t, raw)
	// v2.3: the ERR segment's ERR-1 names the code and text.
	if ack.Get("MSA-1") != "AE" || ack.Get("MSA-2") != "1270326314" || !bytes.Contains(raw, []byte("\rERR|")) ||
		!bytes.Contains(raw, []byte("207")) || !bytes.Contains(raw, []byte("rate limit of this sender exceeded; retry after")) {
		t.Errorf("throttled ACK: %q", raw)
	}
	// Enhanced mode (MSH-15 AL): CE.
	enhanced := bytes.Replace(msg, []byte("|2.3|||"), []byte("|2.3|||AL"), 1)
	if bytes.Equal(enhanced, msg) {
		t.Fatal("test message has no empty MSH-15 after version 2.3")
	}
	if got := parseACK(t, c.Send(t, enhanced)).Get("MSA-1"); got != "CE" {
		t.Errorf("throttled enhanced-mode ACK %q, want CE", got)
	}
	rec.mu.Lock()
	n := len(rec.sources)
	rec.mu.Unlock()
	if n != 2 {
		t.Errorf("%d messages processed, want 2", n)
	}
	// The budget store down: refused the same way.
	rs.Stop()
	raw = c.Send(t, msg)
	if got := parseACK(t, raw).Get("MSA-1"); got != "AE" || !bytes.Contains(raw, []byte("rate limit cannot be checked; retry later")) {
		t.Errorf("with Redis down: ACK %q, want AE cannot be checked", raw)
	}
	if !strings.Contains(logs.String(), `"reason":"rate_limited"`) {
		t.Error("no log line with reason rate_limited")
	}
}
