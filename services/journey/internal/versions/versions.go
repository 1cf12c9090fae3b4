package versions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/services/journey/internal/app"
)

// StreamName is the stream journey versions are kept in.
const StreamName = "JOURNEY_VERSIONS"

// subjectPrefix is followed by the journey id.
const subjectPrefix = "journey.versions."

// StreamConfig is JOURNEY_VERSIONS: every version kept, nothing deleted.
func StreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              StreamName,
		Description:       "Every applied version of every journey file (journey.versions.<journey id>).",
		Subjects:          []string{subjectPrefix + ">"},
		Retention:         jetstream.LimitsPolicy,
		MaxMsgsPerSubject: -1,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		DenyDelete:        true,
		DenyPurge:         true,
		Duplicates:        2 * time.Minute,
	}
}

// Record is one version of a journey.
type Record = app.JourneyVersion

// Store implements app.JourneyVersions.
var _ app.JourneyVersions = (*Store)(nil)

// Hash is the hex SHA-256 of a journey file, as Record.Hash holds it.
func Hash(content []byte) string {
	sum := sha256.Sum256(content)
	return hex.EncodeToString(sum[:])
}

// ErrNotFound is returned for a journey or version the store does not
// have; it is app.ErrNotFound.
var ErrNotFound = app.ErrNotFound

// Store reads and appends journey versions.
type Store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	now    func() time.Time
}

// New declares JOURNEY_VERSIONS (replicas copies) and returns its Store.
func New(ctx context.Context, js jetstream.JetStream, replicas int) (*Store, error) {
	st, err := js.CreateOrUpdateStream(ctx, StreamConfig(replicas))
	if err != nil {
		return nil, fmt.Errorf("declare stream %s: %w", StreamName, err)
	}
	return &Store{js: js, stream: st, now: time.Now}, nil
}

// Latest returns the current (last) version of journey id, with its
// stream sequence.
func (s *Store) Latest(ctx context.Context, id string) (Record, uint64, error) {
	m, err := s.stream.GetLastMsgForSubject(ctx, subjectPrefix+id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Record{}, 0, ErrNotFound
	}
	if err != nil {
		return Record{}, 0, fmt.Errorf("read journey version: %w", err)
	}
	r, err := decode(m.Data)
	return r, m.Sequence, err
}

// Append stores r as the next version of r.Journey (it sets Version, Hash
// and At) and returns it. When the content (and removal) is the same as
// the current version's, nothing is stored and the current version is
// returned with changed false: applying the same file twice is one version.
func (s *Store) Append(ctx context.Context, r Record) (stored Record, changed bool, err error) {
	r.Hash = Hash(r.Content)
	for attempt := 0; ; attempt++ {
		cur, seq, err := s.Latest(ctx, r.Journey)
		switch {
		case errors.Is(err, ErrNotFound):
			r.Version = 1
		case err != nil:
			return Record{}, false, err
		case cur.Hash == r.Hash && cur.Removed == r.Removed:
			return cur, false, nil
		default:
			r.Version = cur.Version + 1
		}
		ok, err := s.publish(ctx, r, seq)
		if err != nil {
			return Record{}, false, err
		}
		if ok {
			return r, true, nil
		}
		if attempt == 4 {
			return Record{}, false, fmt.Errorf("append journey version: %d concurrent applies", attempt+1)
		}
	}
}

// Seed stores r as version 1 of r.Journey unless the store has any
// version of it (also one that removed it). It reports whether it stored.
func (s *Store) Seed(ctx context.Context, r Record) (bool, error) {
	r.Hash, r.Version = Hash(r.Content), 1
	return s.publish(ctx, r, 0)
}

// publish stores r if the journey's subject is still at sequence last. It
// returns false when another version came first.
func (s *Store) publish(ctx context.Context, r Record, last uint64) (bool, error) {
	r.At = s.now().UTC().Truncate(time.Millisecond)
	b, err := json.Marshal(r)
	if err != nil {
		return false, fmt.Errorf("encode journey version: %w", err)
	}
	_, err = s.js.Publish(ctx, subjectPrefix+r.Journey, b, jetstream.WithExpectLastSequencePerSubject(last))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store journey version: %w", err)
	}
	return true, nil
}

// History returns every version of journey id, oldest first (ErrNotFound
// when there is none).
func (s *Store) History(ctx context.Context, id string) ([]Record, error) {
	return s.read(ctx, subjectPrefix+id)
}

// Version returns version n of journey id.
func (s *Store) Version(ctx context.Context, id string, n int) (Record, error) {
	all, err := s.History(ctx, id)
	if err != nil {
		return Record{}, err
	}
	for _, r := range all {
		if r.Version == n {
			return r, nil
		}
	}
	return Record{}, ErrNotFound
}

// ByHash returns the newest version of journey id whose content has the
// given hash prefix (the short version journeys carry in timers).
func (s *Store) ByHash(ctx context.Context, id, prefix string) (Record, error) {
	all, err := s.History(ctx, id)
	if err != nil {
		return Record{}, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if !all[i].Removed && len(prefix) > 0 && len(all[i].Hash) >= len(prefix) && all[i].Hash[:len(prefix)] == prefix {
			return all[i], nil
		}
	}
	return Record{}, ErrNotFound
}

// read returns every record on subject, oldest first, up to the end of
// the stream as it was when reading started.
func (s *Store) read(ctx context.Context, subject string) ([]Record, error) {
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return nil, fmt.Errorf("read journey versions: %w", err)
	}
	info := cons.CachedInfo()
	var out []Record
	pending := info.NumPending
	for pending > 0 {
		batch, err := cons.Fetch(int(min(pending, 256)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read journey versions: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			r, err := decode(m.Data())
			if err != nil {
				return nil, err
			}
			out = append(out, r)
			md, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("read journey versions: %w", err)
			}
			pending = md.NumPending
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("read journey versions: %w", err)
		}
		if n == 0 {
			return nil, fmt.Errorf("read journey versions: %w", context.DeadlineExceeded)
		}
	}
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	return out, nil
}

func decode(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("decode journey version: %w", err)
	}
	return r, nil
}
