package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// scanIdle is how long scan waits for a message it knows is pending
// before it gives up with an error (it never ends early in silence, which
// would make Verify pass over records it did not read).
const scanIdle = 30 * time.Second

// scan calls fn, in stream order, with every message on the subject filter
// that was in the stream when scan started (from start on, if start is not
// zero), until fn returns false. It reads through an ordered consumer,
// which JetStream recreates from the last good position if a message is
// lost in transit, so no stored message is skipped.
func scan(ctx context.Context, s jetstream.Stream, filter string, start time.Time, fn func(streamSeq uint64, subject string, data []byte) bool) error {
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("audit stream info: %w", err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{filter},
		InactiveThreshold: time.Minute,
	}
	if !start.IsZero() {
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &start
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("read audit stream: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read audit stream: %w", err)
	}
	defer it.Stop()
	if ci := cons.CachedInfo(); ci != nil && ci.NumPending == 0 {
		return nil
	}
	for {
		nctx, cancel := context.WithTimeout(ctx, scanIdle)
		m, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("read audit stream: %w", ctx.Err())
			}
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("read audit stream: no message for %s though some are pending", scanIdle)
			}
			return fmt.Errorf("read audit stream: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read audit stream: %w", err)
		}
		if md.Sequence.Stream > last {
			return nil // stored after the scan began
		}
		if !fn(md.Sequence.Stream, m.Subject(), m.Data()) || md.NumPending == 0 || md.Sequence.Stream == last {
			return nil
		}
	}
}
