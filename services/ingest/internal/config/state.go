package config

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// StateConfig configures the last-seen resource state kept in Redis
// (INGEST_REDIS_URL), from which ingest decides transitions.
type StateConfig struct {
	// StateTTL is how long a resource's state is kept after its last
	// change (400 days: longer than appointments are booked ahead).
	StateTTL time.Duration `env:"INGEST_STATE_TTL" envDefault:"9600h"`
	// StateLockTTL is how long a resource stays locked by a replica that
	// died while deciding it; above the slowest publish and audit write.
	StateLockTTL time.Duration `env:"INGEST_STATE_LOCK_TTL" envDefault:"15s"`
	// StateLockWait is how long a request waits for a resource another
	// request is deciding before answering "retry later".
	StateLockWait time.Duration `env:"INGEST_STATE_LOCK_WAIT" envDefault:"5s"`
	// MLLPIdentifierSystems maps the HL7 v2 source's assigning
	// authorities to FHIR identifier systems, as namespace=system entries
	// separated by commas; see IdentifierSystems.
	MLLPIdentifierSystems IdentifierSystems `env:"INGEST_MLLP_IDENTIFIER_SYSTEMS"`
}

// IdentifierSystems maps HL7 v2 assigning authorities (an EI-2 namespace
// id or CX-4.1, or a universal id EI-3/CX-4.2) to FHIR Identifier.system
// URIs, written namespace=system,... The names @placer, @filler, @visit
// and @patient give the system of identifiers sent without an assigning
// authority in that role.
type IdentifierSystems map[string]string

// UnmarshalText parses namespace=system entries separated by commas.
func (m *IdentifierSystems) UnmarshalText(text []byte) error {
	out := IdentifierSystems{}
	for i, entry := range strings.Split(string(text), ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		ns, system, ok := strings.Cut(entry, "=")
		ns, system = strings.TrimSpace(ns), strings.TrimSpace(system)
		if !ok || ns == "" || system == "" {
			return fmt.Errorf("entry %d: want namespace=system", i+1)
		}
		if strings.HasPrefix(ns, "@") && !roleNames[ns] {
			return fmt.Errorf("entry %d: roles are @placer, @filler, @visit and @patient", i+1)
		}
		if _, dup := out[ns]; dup {
			return fmt.Errorf("entry %d: namespace given twice", i+1)
		}
		out[ns] = system
	}
	*m = out
	return nil
}

var roleNames = map[string]bool{"@placer": true, "@filler": true, "@visit": true, "@patient": true}

// validateState checks the INGEST_STATE_* variables.
func (c *Config) validateState() []error {
	var errs []error
	if c.StateTTL < 24*time.Hour {
		errs = append(errs, errors.New("INGEST_STATE_TTL must be at least 24h: a shorter memory emits a booking again when it expires"))
	}
	if c.StateLockTTL < time.Second {
		errs = append(errs, errors.New("INGEST_STATE_LOCK_TTL must be at least 1s"))
	}
	if c.StateLockTTL <= c.PublishTimeout {
		errs = append(errs, errors.New("INGEST_STATE_LOCK_TTL must be longer than INGEST_PUBLISH_TIMEOUT"))
	}
	if c.StateLockWait <= 0 {
		errs = append(errs, errors.New("INGEST_STATE_LOCK_WAIT must be positive"))
	}
	return errs
}
