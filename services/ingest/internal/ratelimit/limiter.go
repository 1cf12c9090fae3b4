package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
)

// Limiter is the shared rate limiter.
type Limiter struct {
	l *redis_rate.Limiter
}

// New returns a Limiter on c.
func New(c *redis.Client) *Limiter { return &Limiter{l: redis_rate.NewLimiter(c)} }

// Key is the Redis key of source's budget in tenant (redis_rate prefixes
// it with "rate:").
func Key(tenant, source string) string { return store.Key(tenant, "ingest", "rate", source) }

// Allow takes one request from source's budget. It returns false and how
// long to wait when the budget is spent; an error when Redis did not
// answer (the caller refuses the request: fail closed). Sources without a
// rate are always allowed, without a Redis call.
func (l *Limiter) Allow(ctx context.Context, tenant, source string, lim config.Limits) (bool, time.Duration, error) {
	if lim.Rate <= 0 {
		return true, 0, nil
	}
	res, err := l.l.Allow(ctx, Key(tenant, source), redis_rate.Limit{Rate: lim.Rate, Burst: lim.BurstSize(), Period: lim.Period()})
	if err != nil {
		return false, 0, fmt.Errorf("rate limit: %w", err)
	}
	if res.Allowed > 0 {
		return true, 0, nil
	}
	return false, res.RetryAfter, nil
}
