package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Handler processes one message. Returning nil acknowledges it; an error
// wrapped with Permanent terminates it (it will not be redelivered); any
// other error asks for redelivery after a backoff.
//
// The error is logged through the service's (redacting) logger, but handlers
// should still keep PHI out of error text; it is never sent to the server
// (termination uses a fixed reason).
type Handler func(ctx context.Context, msg jetstream.Msg) error

// ConsumeOption tunes Consume.
type ConsumeOption func(*consumeOptions)

type consumeOptions struct {
	maxBackoff time.Duration
	prefetch   int
}

// WithMaxBackoff caps the redelivery delay (default one minute).
func WithMaxBackoff(d time.Duration) ConsumeOption {
	return func(o *consumeOptions) { o.maxBackoff = d }
}

// WithPrefetch sets how many messages the client buffers ahead (default
// 64). Slow handlers (SMTP, provider APIs) want 1: JetStream's AckWait
// starts when a message is delivered into the buffer, not when the handler
// gets it.
func WithPrefetch(n int) ConsumeOption {
	return func(o *consumeOptions) { o.prefetch = n }
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

type delayError struct {
	err   error
	after time.Duration
}

func (e delayError) Error() string { return e.err.Error() }
func (e delayError) Unwrap() error { return e.err }

// Delay asks for redelivery after exactly d instead of the backoff: for a
// handler that knows when to try again (a rate limit, its own backoff).
// Consume logs it at debug level, as a wait is not a failure.
func Delay(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return delayError{err: err, after: d}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Backoff returns the redelivery delay after the n-th delivery (n >= 1):
// 1s, 2s, 4s, ... capped at max.
func Backoff(n uint64, max time.Duration) time.Duration {
	d := time.Second
	for i := uint64(1); i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// Consume creates or updates the durable pull consumer cfg on stream and
// feeds its messages to h one at a time until ctx is cancelled. cfg's
// AckPolicy is forced to explicit. It returns nil when ctx is cancelled.
func Consume(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig, logger *slog.Logger, h Handler, opts ...ConsumeOption) error {
	o := consumeOptions{maxBackoff: time.Minute, prefetch: 64}
	for _, opt := range opts {
		opt(&o)
	}
	cfg.AckPolicy = jetstream.AckExplicitPolicy
	if cfg.AckWait == 0 {
		cfg.AckWait = 30 * time.Second
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(o.prefetch))
	if err != nil {
		return fmt.Errorf("consume %s: %w", cfg.Durable, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return nil
			}
			logger.Warn("consumer next", "consumer", cfg.Durable, "err", err)
			continue
		}
		settle(ctx, msg, h(ctx, msg), cfg.Durable, o.maxBackoff, logger)
	}
}

func settle(ctx context.Context, msg jetstream.Msg, herr error, durable string, maxBackoff time.Duration, logger *slog.Logger) {
	var err error
	switch {
	case herr == nil:
		err = msg.DoubleAck(ctx)
	case IsPermanent(herr):
		logger.Error("message terminated", "consumer", durable, "natsSubject", msg.Subject(), "err", herr)
		err = msg.TermWithReason("permanent handler failure")
	case errors.As(herr, new(delayError)):
		var d delayError
		errors.As(herr, &d)
		logger.Debug("message redelivery", "consumer", durable, "natsSubject", msg.Subject(), "retryIn", d.after.String(), "err", herr)
		err = msg.NakWithDelay(d.after)
	default:
		n := uint64(1)
		if md, mdErr := msg.Metadata(); mdErr == nil {
			n = md.NumDelivered
		}
		delay := Backoff(n, maxBackoff)
		logger.Warn("message redelivery", "consumer", durable, "natsSubject", msg.Subject(), "delivered", n, "retryIn", delay.String(), "err", herr)
		err = msg.NakWithDelay(delay)
	}
	if err != nil {
		logger.Warn("settle message", "consumer", durable, "err", err)
	}
}
