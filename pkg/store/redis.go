package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// NewRedis returns a client for url (redis://[:password@]host:port/db or
// rediss:// for TLS) and checks it answers PING within ctx.
func NewRedis(ctx context.Context, url string) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		// The URL may hold a password: don't echo it.
		return nil, fmt.Errorf("parse redis url: invalid url")
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 3 * time.Second
	}
	c := redis.NewClient(opts)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pingCtx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("redis ping %s: %w", opts.Addr, err)
	}
	return c, nil
}

// Ready is a readiness check for c.
func Ready(c *redis.Client) func(context.Context) error {
	return func(ctx context.Context) error { return c.Ping(ctx).Err() }
}

// Key builds a tenant-scoped key cn:{tenant}:part:part...
func Key(tenant string, parts ...string) string {
	return "cn:{" + tenant + "}:" + strings.Join(parts, ":")
}
