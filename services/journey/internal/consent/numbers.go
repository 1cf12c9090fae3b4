package consent

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/services/journey/internal/app"
)

var _ app.Numbers = (*Store)(nil)

// NumberTTL is how long journey remembers that it texted a patient at a
// number: a STOP from a number not texted for that long finds nobody.
const NumberTTL = 400 * 24 * time.Hour

// numberKey is the Redis hash of the patients texted at a number: fields
// are the patients' keyed hashes, values their ids sealed (bound to key
// and field).
func numberKey(tenant, numberHash string) string {
	return store.Key(tenant, "smsnum", numberHash)
}

// RememberNumber implements app.Numbers.
func (s *Store) RememberNumber(ctx context.Context, tenant, numberHash, patient string) error {
	k := numberKey(tenant, numberHash)
	field := s.PatientHash(tenant, patient)
	sealed, err := store.Seal(ctx, s.sealer, tenant, k+"/"+field, []byte(patient))
	if err != nil {
		return fmt.Errorf("remember number: %w", err)
	}
	if err := s.c.HSet(ctx, k, field, sealed).Err(); err != nil {
		return fmt.Errorf("remember number: %w", err)
	}
	if err := s.c.Expire(ctx, k, NumberTTL).Err(); err != nil {
		return fmt.Errorf("remember number: %w", err)
	}
	return nil
}

// PatientsByNumber implements app.Numbers. A value that does not open
// (altered, or moved from another number) is an error: journey then
// retries rather than skip a patient's STOP.
func (s *Store) PatientsByNumber(ctx context.Context, tenant, numberHash string) ([]string, error) {
	k := numberKey(tenant, numberHash)
	h, err := s.c.HGetAll(ctx, k).Result()
	if err != nil {
		return nil, fmt.Errorf("read number: %w", err)
	}
	out := make([]string, 0, len(h))
	for field, v := range h {
		b, err := store.Open(ctx, s.sealer, tenant, k+"/"+field, []byte(v))
		if err != nil {
			return nil, fmt.Errorf("read number: %w", err)
		}
		out = append(out, string(b))
	}
	sort.Strings(out)
	return out, nil
}
