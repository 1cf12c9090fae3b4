// Package ratelimit holds each source's request budget in Redis, so that
// every ingest replica draws from the same budget: GCRA (generic cell rate
// algorithm) by github.com/go-redis/redis_rate, one Lua script call per
// request, key rate:cn:{<tenant>}:ingest:rate:<source> (no PHI).
package ratelimit
