package storetest

import (
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/pkg/store/redisproc"
)

// URL returns the URL of a Redis for this test.
//
// With REDIS_URL set, tests share that server, so they must use their own
// key prefixes (e.g. a tenant named after the test).
func URL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	s, err := redisproc.Start(t.Context(), redisproc.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start redis: %v", err)
	}
	t.Cleanup(s.Stop)
	return s.URL
}

// Client returns a connected client to a Redis for this test.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	c, err := store.NewRedis(t.Context(), URL(t))
	if err != nil {
		t.Fatalf("connect redis: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
