package limits_test

import (
	"context"
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/store/storetest"
	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/limits"
)

func TestConcurrency(t *testing.T) {
	l := limits.New(storetest.Client(t))
	ctx := t.Context()
	lim := app.Limit{Concurrency: 2}
	var held []app.Permit
	for range 2 {
		p, err := l.Acquire(ctx, "t1", "relay.example.org", lim, time.Minute)
		if err != nil || p.Wait != 0 || p.Release == nil {
			t.Fatalf("Acquire() = %+v, %v; want a slot", p, err)
		}
		held = append(held, p)
	}
	p, err := l.Acquire(ctx, "t1", "relay.example.org", lim, time.Minute)
	if err != nil || p.Wait <= 0 || p.Reason != app.ThrottleConcurrency || p.Release != nil {
		t.Fatalf("third Acquire() = %+v, %v; want a wait for concurrency", p, err)
	}
	// Another destination, and another tenant, have their own slots.
	for _, tt := range []struct{ tenant, dest string }{{"t1", "mx.example.net"}, {"t2", "relay.example.org"}} {
		if p, err := l.Acquire(ctx, tt.tenant, tt.dest, lim, time.Minute); err != nil || p.Wait != 0 {
			t.Errorf("Acquire(%s, %s) = %+v, %v; want a slot", tt.tenant, tt.dest, p, err)
		}
	}
	held[0].Release(ctx)
	if p, err := l.Acquire(ctx, "t1", "relay.example.org", lim, time.Minute); err != nil || p.Wait != 0 {
		t.Errorf("Acquire() after a release = %+v, %v; want a slot", p, err)
	}
}

func TestConcurrencyLeaseEnds(t *testing.T) {
	l := limits.New(storetest.Client(t))
	ctx := t.Context()
	lim := app.Limit{Concurrency: 1}
	// A worker that died holding its slot: the lease frees it.
	if p, err := l.Acquire(ctx, "t1", "relay.example.org", lim, 50*time.Millisecond); err != nil || p.Wait != 0 {
		t.Fatalf("Acquire() = %+v, %v", p, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, err := l.Acquire(ctx, "t1", "relay.example.org", lim, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if p.Wait == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("slot still taken long after its lease ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRate(t *testing.T) {
	l := limits.New(storetest.Client(t))
	ctx := t.Context()
	lim := app.Limit{Rate: 2, Per: app.Duration(time.Hour), Concurrency: 5}
	for i := range 2 {
		p, err := l.Acquire(ctx, "t1", "relay.example.org", lim, time.Minute)
		if err != nil || p.Wait != 0 {
			t.Fatalf("Acquire() #%d = %+v, %v; want allowed", i+1, p, err)
		}
	}
	p, err := l.Acquire(ctx, "t1", "relay.example.org", lim, time.Minute)
	if err != nil || p.Reason != app.ThrottleRate || p.Wait < 10*time.Minute || p.Release != nil {
		t.Fatalf("third Acquire() = %+v, %v; want a wait of most of half an hour for the rate", p, err)
	}
	// The refused message gave its concurrency slot back: 2 are held, 3 more fit.
	for i := range 3 {
		if p, err := l.Acquire(ctx, "t1", "relay.example.org", app.Limit{Concurrency: 5}, time.Minute); err != nil || p.Wait != 0 {
			t.Fatalf("slot #%d = %+v, %v; the rate-refused message kept its slot", i+3, p, err)
		}
	}
}

func TestWarmupCount(t *testing.T) {
	l := limits.New(storetest.Client(t))
	ctx := context.Background()
	day := time.Date(2026, 12, 3, 23, 0, 0, 0, time.UTC)
	for i, want := range []bool{true, true, false, false} {
		ok, err := l.CountWarmup(ctx, "ip-a", day, 2)
		if err != nil || ok != want {
			t.Fatalf("CountWarmup() #%d = %v, %v; want %v", i+1, ok, err, want)
		}
	}
	// The next day counts afresh; another identity has its own count.
	if ok, _ := l.CountWarmup(ctx, "ip-a", day.Add(2*time.Hour), 2); !ok {
		t.Error("next day refused")
	}
	if ok, _ := l.CountWarmup(ctx, "ip-b", day, 2); !ok {
		t.Error("another identity refused")
	}
}
