package envelope

import (
	"context"
	"errors"
	"fmt"
)

// maxRewrapAttempts bounds the compare-and-set retries for one data key.
const maxRewrapAttempts = 5

// A RewrapReport counts what [Sealer.Rewrap] did. Total = Rewrapped +
// Current + Failed.
type RewrapReport struct {
	// Primary is the KEK every data key should be wrapped by afterwards.
	Primary string
	// Total is the number of data keys examined.
	Total int
	// Rewrapped is the number of data keys this run moved to Primary.
	Rewrapped int
	// Current is the number of data keys already wrapped by Primary.
	Current int
	// Failed is the number of data keys that could not be re-wrapped; the
	// error returned with the report says why.
	Failed int
}

// Rewrap re-wraps every data key in the store that is not wrapped by the
// primary KEK under the primary, with a compare-and-set update (retried on
// conflict). The data keys themselves, and so every sealed value, stay as
// they are. It goes on past a key it cannot re-wrap (its KEK is not in the
// keyring, say) and returns the report with the joined errors.
func (s *Sealer) Rewrap(ctx context.Context) (RewrapReport, error) {
	r := RewrapReport{Primary: s.kr.Primary()}
	ids, err := s.ks.List(ctx)
	if err != nil {
		return r, fmt.Errorf("rewrap: list data keys: %w", err)
	}
	var errs []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		done, err := s.rewrapOne(ctx, id)
		switch {
		case errors.Is(err, ErrKeyNotFound):
			continue // deleted since List: nothing to re-wrap
		case err != nil:
			r.Failed++
			errs = append(errs, err)
		case done:
			r.Rewrapped++
		default:
			r.Current++
		}
		r.Total++
	}
	if err := errors.Join(errs...); err != nil {
		return r, fmt.Errorf("rewrap: %w", err)
	}
	return r, nil
}

// rewrapOne re-wraps data key id under the primary KEK. It reports whether
// it changed the key (false: it was already under the primary).
func (s *Sealer) rewrapOne(ctx context.Context, id string) (bool, error) {
	for range maxRewrapAttempts {
		w, err := s.ks.Get(ctx, id)
		if err != nil {
			return false, fmt.Errorf("data key %s: %w", id, err)
		}
		if w.KEK == s.kr.Primary() {
			return false, nil
		}
		dek, err := s.kr.unwrap(id, w)
		if err != nil {
			return false, err
		}
		nw := s.kr.wrap(id, dek)
		clear(dek)
		err = s.ks.Update(ctx, id, nw, w.Revision)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, ErrRevisionConflict) {
			return false, fmt.Errorf("data key %s: %w", id, err)
		}
	}
	return false, fmt.Errorf("data key %s: still changing after %d attempts: %w", id, maxRewrapAttempts, ErrRevisionConflict)
}
