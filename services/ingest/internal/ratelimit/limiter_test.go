package ratelimit_test

import (
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/pkg/store/redisproc"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
	"github.com/carenotify/carenotify/services/ingest/internal/ratelimit"
)

// TestSharedBudget: two replicas (two clients, one Redis) draw from one
// budget per source.
func TestSharedBudget(t *testing.T) {
	url := storetest.URL(t)
	var replicas []*ratelimit.Limiter
	for range 2 {
		c, err := store.NewRedis(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		replicas = append(replicas, ratelimit.New(c))
	}
	lim := config.Limits{Rate: 3, Per: time.Hour}
	allowed := 0
	for i := range 6 {
		ok, wait, err := replicas[i%2].Allow(t.Context(), "north", "lab", lim)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			allowed++
		} else if wait <= 0 {
			t.Errorf("refused without a wait")
		}
	}
	if allowed != 3 {
		t.Errorf("%d of 6 allowed across replicas, want 3", allowed)
	}
	// Another source, and the same name in another tenant, are separate.
	for _, k := range [][2]string{{"north", "lab2"}, {"south", "lab"}} {
		if ok, _, err := replicas[0].Allow(t.Context(), k[0], k[1], lim); !ok || err != nil {
			t.Errorf("%v: refused (%v), want its own budget", k, err)
		}
	}
	// No rate: always allowed.
	if ok, _, err := replicas[0].Allow(t.Context(), "north", "lab", config.Limits{}); !ok || err != nil {
		t.Errorf("unlimited source refused: %v", err)
	}
}

func TestRedisDown(t *testing.T) {
	rs, err := redisproc.Start(t.Context(), redisproc.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := store.NewRedis(t.Context(), rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	rs.Stop()
	if ok, _, err := ratelimit.New(c).Allow(t.Context(), "north", "lab", config.Limits{Rate: 3}); ok || err == nil {
		t.Errorf("Allow with Redis down = %v, %v; want refused with an error", ok, err)
	}
}
