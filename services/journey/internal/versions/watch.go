package versions

import (
	"context"
	"fmt"
	"log/slog"
	"maps"

	"github.com/nats-io/nats.go/jetstream"
)

// Watch calls fn with the current version of every journey (removed ones
// included, marked), by journey id: once when it has read them all, then
// after every change (a burst of changes may come as one call). It returns
// when ctx ends or the stream cannot be read; fn runs on Watch's goroutine.
// A record that does not decode is logged (subject and sequence) and
// skipped: the journey keeps its previous version.
func (s *Store) Watch(ctx context.Context, logger *slog.Logger, fn func(map[string]Record)) error {
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjectPrefix + ">"},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return fmt.Errorf("watch journey versions: %w", err)
	}
	current := map[string]Record{}
	if cons.CachedInfo().NumPending == 0 {
		fn(maps.Clone(current))
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("watch journey versions: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch journey versions: %w", err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("watch journey versions: %w", err)
		}
		if r, err := decode(m.Data()); err == nil && subjectPrefix+r.Journey == m.Subject() {
			current[r.Journey] = r
		} else {
			logger.WarnContext(ctx, "journey version does not decode; skipped", "subject", m.Subject(), "seq", md.Sequence.Stream)
		}
		if md.NumPending == 0 {
			fn(maps.Clone(current))
		}
	}
}
