package bus_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/bus/bustest"
)

func TestEnsureStreamsIsIdempotent(t *testing.T) {
	_, js := bustest.Connect(t, bustest.Start(t))
	ctx := t.Context()
	cfgs := []jetstream.StreamConfig{bus.EHREvents(1), bus.EHRDead(1), bus.Delivery(1), bus.Outbox("email", 1)}
	for range 2 {
		if err := bus.EnsureStreams(ctx, js, cfgs...); err != nil {
			t.Fatalf("EnsureStreams() = %v", err)
		}
	}
	var names []string
	for name := range js.StreamNames(ctx).Name() {
		names = append(names, name)
	}
	want := []string{"DELIVERY", "EHR_DEAD", "EHR_EVENTS", "OUTBOX_EMAIL"}
	if diff := cmp.Diff(want, names, cmpSorted); diff != "" {
		t.Errorf("streams (-want +got):\n%s", diff)
	}
}

var cmpSorted = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

func TestPublishDeduplicates(t *testing.T) {
	_, js := bustest.Connect(t, bustest.Start(t))
	ctx := t.Context()
	if err := bus.EnsureStreams(ctx, js, bus.EHREvents(1)); err != nil {
		t.Fatal(err)
	}
	hdr := nats.Header{bus.HeaderTenant: []string{"demo"}}
	first, err := bus.Publish(ctx, js, "ehr.demo.appointment.booked", []byte("a"), "evt-1", hdr)
	if err != nil {
		t.Fatal(err)
	}
	second, err := bus.Publish(ctx, js, "ehr.demo.appointment.booked", []byte("a"), "evt-1", hdr)
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || !second.Duplicate || second.Sequence != first.Sequence {
		t.Errorf("acks = %+v, %+v; want second to be a duplicate of the first", first, second)
	}
	if _, err := bus.Publish(ctx, js, "ehr.demo.appointment.booked", []byte("a"), "", hdr); err == nil {
		t.Error("Publish with empty id succeeded")
	}
}

func TestConsumeAcksRetriesAndTerminates(t *testing.T) {
	_, js := bustest.Connect(t, bustest.Start(t))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := bus.EnsureStreams(ctx, js, bus.Outbox("email", 1)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ok", "retry", "bad", "later"} {
		if _, err := bus.Publish(ctx, js, "outbox.email.demo", []byte(id), id, nil); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	seen := map[string]int{}
	var laterAt []time.Time
	done := make(chan struct{})
	// A Delay asks for exactly its delay, longer here than the 1 s backoff.
	const delay = 2 * time.Second
	h := func(_ context.Context, msg jetstream.Msg) error {
		mu.Lock()
		defer mu.Unlock()
		id := string(msg.Data())
		seen[id]++
		if id == "later" {
			laterAt = append(laterAt, time.Now())
		}
		if seen["ok"] == 1 && seen["retry"] == 2 && seen["bad"] == 1 && seen["later"] == 2 {
			close(done)
		}
		switch {
		case id == "later" && seen[id] == 1:
			return bus.Delay(errors.New("wait for a limit"), delay)
		case id == "retry" && seen[id] == 1:
			return errors.New("temporary")
		case id == "bad":
			return bus.Permanent(errors.New("cannot decode"))
		}
		return nil
	}
	errc := make(chan error, 1)
	go func() {
		errc <- bus.Consume(ctx, js, "OUTBOX_EMAIL", jetstream.ConsumerConfig{Durable: "worker"}, slog.New(slog.DiscardHandler), h)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("handler saw %v before timeout", seen)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Consume() = %v", err)
	}
	if gap := laterAt[1].Sub(laterAt[0]); gap < delay {
		t.Errorf("delayed message redelivered after %v, want at least %v", gap, delay)
	}
	// Work-queue retention: acked and terminated messages are gone.
	info, err := js.Stream(context.Background(), "OUTBOX_EMAIL")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for info.CachedInfo().State.Msgs != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		_, _ = info.Info(context.Background())
	}
	if n := info.CachedInfo().State.Msgs; n != 0 {
		t.Errorf("outbox holds %d messages after processing, want 0", n)
	}
}

func TestSubject(t *testing.T) {
	tests := []struct {
		name    string
		give    []string
		want    string
		wantErr bool
	}{
		{name: "ok", give: []string{"ehr", "demo", "appointment", "booked"}, want: "ehr.demo.appointment.booked"},
		{name: "wildcard", give: []string{"ehr", "*", "a", "b"}, wantErr: true},
		{name: "dot", give: []string{"ehr", "de.mo", "a", "b"}, wantErr: true},
		{name: "empty", give: []string{"ehr", "", "a", "b"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bus.Subject(tt.give...)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Subject(%q) = %q, %v", tt.give, got, err)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	got := []time.Duration{bus.Backoff(1, time.Minute), bus.Backoff(3, time.Minute), bus.Backoff(20, time.Minute)}
	want := []time.Duration{time.Second, 4 * time.Second, time.Minute}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Backoff (-want +got):\n%s", diff)
	}
}
