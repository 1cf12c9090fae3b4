package config

import (
	"fmt"
	"time"
)

// Limits are a source's request rate and body size limits; zero values
// mean no per-source limit.
type Limits struct {
	// Rate is how many requests (HTTP requests, MLLP messages) the source
	// may send per Per, shared by every replica (Redis).
	Rate int `yaml:"rate"`
	// Per is the period of Rate; one second when zero.
	Per time.Duration `yaml:"per"`
	// Burst is how many requests may come at once; Rate when zero.
	Burst int `yaml:"burst"`
	// MaxBodyBytes is the largest body (HTTP) or message (MLLP) accepted
	// from the source, below INGEST_MAX_BODY_BYTES /
	// INGEST_MLLP_MAX_FRAME_BYTES.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// Period returns Per, one second by default.
func (l Limits) Period() time.Duration {
	if l.Per <= 0 {
		return time.Second
	}
	return l.Per
}

// BurstSize returns Burst, Rate by default.
func (l Limits) BurstSize() int {
	if l.Burst <= 0 {
		return l.Rate
	}
	return l.Burst
}

func (l Limits) validate() []string {
	var out []string
	if l.Rate < 0 || l.Burst < 0 || l.MaxBodyBytes < 0 {
		out = append(out, "limits: rate, burst and max_body_bytes must not be negative")
	}
	if l.Burst > 0 && l.Rate == 0 {
		out = append(out, "limits.burst needs limits.rate")
	}
	if l.Per != 0 && (l.Per < time.Second || l.Per > time.Hour) {
		out = append(out, fmt.Sprintf("limits.per must be between 1s and 1h, not %s", l.Per))
	}
	return out
}
