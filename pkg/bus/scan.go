package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ScanIdle is how long Scan waits for a message it knows is pending
// before it gives up with an error: it never ends early in silence.
const ScanIdle = 30 * time.Second

// Scan calls fn, in stream order, with every message of stream on the
// subject filter that was stored when Scan started, until fn returns
// false or an error. It reads through an ordered consumer, which
// JetStream recreates from the last good position if a message is lost in
// transit, so no stored message is skipped.
func Scan(ctx context.Context, js jetstream.JetStream, stream, filter string, fn func(m jetstream.Msg) (bool, error)) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("scan %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("scan %s: %w", stream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, InactiveThreshold: time.Minute})
	if err != nil {
		return fmt.Errorf("scan %s: %w", stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("scan %s: %w", stream, err)
	}
	defer it.Stop()
	if ci := cons.CachedInfo(); ci != nil && ci.NumPending == 0 {
		return nil
	}
	for {
		nctx, cancel := context.WithTimeout(ctx, ScanIdle)
		m, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("scan %s: %w", stream, ctx.Err())
			}
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("scan %s: no message for %s though some are pending", stream, ScanIdle)
			}
			return fmt.Errorf("scan %s: %w", stream, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("scan %s: %w", stream, err)
		}
		if md.Sequence.Stream > last {
			return nil // stored after the scan began
		}
		more, err := fn(m)
		if err != nil || !more || md.NumPending == 0 || md.Sequence.Stream == last {
			return err
		}
	}
}
