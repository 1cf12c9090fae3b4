package replaycache_test

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/store/storetest"
	"github.com/carenotify/carenotify/services/ingest/internal/replaycache"
)

func TestClaim(t *testing.T) {
	rc := storetest.Client(t)
	c := replaycache.New(rc)
	sig := []byte("0123456789abcdef0123456789abcdef")

	// Concurrent claims of one signature (replicas): exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ok, err := c.Claim(t.Context(), "north", "lab", sig, time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d claims won, want 1", wins.Load())
	}
	// Another source's identical signature is its own.
	if ok, err := c.Claim(t.Context(), "north", "lab2", sig, time.Minute); !ok || err != nil {
		t.Errorf("other source's claim = %v, %v; want true", ok, err)
	}
	key := replaycache.Key("north", "lab", sig)
	if !strings.HasPrefix(key, "cn:{north}:ingest:sig:") || strings.Contains(key, "0123456789abcdef") {
		t.Errorf("key %q: want cn:{north}:ingest:sig:<hash>", key)
	}
	if ttl := rc.PTTL(t.Context(), key).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("TTL = %v, want (0, 1m]", ttl)
	}
	if err := c.Release(t.Context(), "north", "lab", sig); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Claim(t.Context(), "north", "lab", sig, time.Minute); !ok || err != nil {
		t.Errorf("claim after release = %v, %v; want true", ok, err)
	}
}
