package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/carenotify/carenotify/pkg/bus"
)

// AnyDestination names the limit that applies to destinations a policy's
// Limits does not name.
const AnyDestination = "*"

// Limit bounds the traffic of one tenant to one destination (the relay
// host, or an MX host), shared by every replica through Redis. Zero
// values mean no bound.
type Limit struct {
	// Concurrency is how many deliveries may be under way at once.
	Concurrency int `json:"concurrency"`
	// Rate is how many messages may start per Per (GCRA, redis_rate).
	Rate int `json:"rate"`
	// Per is Rate's period; one second when zero.
	Per Duration `json:"per"`
	// Burst is how many may start at once; Rate when zero.
	Burst int `json:"burst"`
}

// Warmup is an IP warm-up schedule (RFC-less, what mailbox providers
// expect of a new sending address): a daily cap of messages per sending
// identity, FirstDay on the Start day, multiplied by Factor every day
// after, until it reaches Full (from then on, no cap).
type Warmup struct {
	// Identity names the sending identity (an IP address, a pool); tenants
	// with the same identity share its cap. "" is no warm-up.
	Identity string `json:"identity"`
	// Start is day 1, a UTC date (YYYY-MM-DD).
	Start string `json:"start"`
	// FirstDay is day 1's cap.
	FirstDay int `json:"first_day"`
	// Factor multiplies the cap every day; 2 when zero.
	Factor float64 `json:"factor"`
	// Full is the cap at which the warm-up ends; 0 means it never does.
	Full int `json:"full"`
}

// Duration is a time.Duration spelt as in Go ("1s", "1m") in JSON.
type Duration time.Duration

// UnmarshalJSON reads "1s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`a duration is a string such as "1s"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a duration such as \"1s\"", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes "1s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// LimitFor returns the limit of destination under p: its own, else the
// "*" one, else none.
func (p Policy) LimitFor(destination string) Limit {
	if l, ok := p.Limits[strings.ToLower(destination)]; ok {
		return l
	}
	return p.Limits[AnyDestination]
}

// Period returns Per, one second when zero.
func (l Limit) Period() time.Duration {
	if l.Per == 0 {
		return time.Second
	}
	return time.Duration(l.Per)
}

// BurstOrRate returns Burst, Rate when zero.
func (l Limit) BurstOrRate() int {
	if l.Burst == 0 {
		return l.Rate
	}
	return l.Burst
}

func (l Limit) validate(dest string) error {
	var errs []error
	if l.Concurrency < 0 || l.Rate < 0 || l.Burst < 0 || l.Per < 0 {
		errs = append(errs, fmt.Errorf("limits.%s: values must not be negative", dest))
	}
	if l.Burst > 0 && l.Rate == 0 {
		errs = append(errs, fmt.Errorf("limits.%s: burst needs a rate", dest))
	}
	if dest != AnyDestination && (dest == "" || strings.ContainsAny(dest, " /:@") || strings.ToLower(dest) != dest) {
		errs = append(errs, fmt.Errorf("limits: %q is not a lower-case host name or \"*\"", dest))
	}
	return errors.Join(errs...)
}

// startDay parses Start.
func (w Warmup) startDay() (time.Time, error) { return time.Parse(time.DateOnly, w.Start) }

func (w Warmup) validate() error {
	if w.Identity == "" {
		return nil
	}
	var errs []error
	if !bus.ValidToken(w.Identity) {
		errs = append(errs, errors.New("warmup.identity must be 1-64 letters, digits, '_' or '-'"))
	}
	if _, err := w.startDay(); err != nil {
		errs = append(errs, errors.New("warmup.start must be a date YYYY-MM-DD"))
	}
	if w.FirstDay < 1 {
		errs = append(errs, errors.New("warmup.first_day must be at least 1"))
	}
	if w.Factor != 0 && w.Factor < 1 {
		errs = append(errs, errors.New("warmup.factor must be at least 1"))
	}
	if w.Full < 0 {
		errs = append(errs, errors.New("warmup.full must not be negative"))
	}
	return errors.Join(errs...)
}

// Cap returns the warm-up's cap on the UTC day of now, and false when no
// cap applies (no warm-up, or it is over). Before Start, day 1's cap
// applies.
func (w Warmup) Cap(now time.Time) (int, bool) {
	if w.Identity == "" {
		return 0, false
	}
	start, err := w.startDay()
	if err != nil {
		return 0, false
	}
	days := int(now.UTC().Truncate(24*time.Hour).Sub(start) / (24 * time.Hour))
	factor := w.Factor
	if factor == 0 {
		factor = 2
	}
	c := float64(w.FirstDay) * math.Pow(factor, float64(max(days, 0)))
	if w.Full > 0 && c >= float64(w.Full) {
		return 0, false
	}
	if c > math.MaxInt32 {
		return 0, false
	}
	return int(c), true
}

// Throttle reasons: why a message waits without an attempt.
const (
	ThrottleConcurrency = "concurrency"
	ThrottleRate        = "rate"
	ThrottleWarmup      = "warmup"
)

// Permit is the answer of Limiter.Acquire.
type Permit struct {
	// Wait is zero when the delivery may start; otherwise how long to wait
	// before asking again, and Reason says which bound it hit.
	Wait   time.Duration
	Reason string
	// Release gives the concurrency slot back (nil when none was taken).
	Release func(context.Context)
}

// Limiter enforces Limits and Warmup caps across replicas (Redis).
type Limiter interface {
	// Acquire takes a concurrency slot of tenant × destination (held at
	// most lease, in case this process dies) and a rate token, as l
	// allows.
	Acquire(ctx context.Context, tenant, destination string, l Limit, lease time.Duration) (Permit, error)
	// CountWarmup counts one message against identity's cap for the UTC
	// day of now; ok is false (and nothing counted) when the cap is
	// reached.
	CountWarmup(ctx context.Context, identity string, now time.Time, limit int) (ok bool, err error)
}

// Later is a Process result that asks the outbox to hand the message out
// again after After: a throttled message (not an attempt: the record is
// unchanged) or a deferred one (After is the backoff of its attempts).
type Later struct {
	After time.Duration
	Err   error
}

// Error returns the cause.
func (l *Later) Error() string { return l.Err.Error() }

// Unwrap returns the cause.
func (l *Later) Unwrap() error { return l.Err }

// nextDay returns the start of the UTC day after now.
func nextDay(now time.Time) time.Time { return now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour) }
