package bus

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamConsent is the stream of consent changes.
const StreamConsent = "CONSENT"

// Consent is the stream of consent changes journey records,
// consent.<tenant>.<channel>.<purpose> (bodies sealed; no PHI in subjects
// or headers). Journey publishes every change here before it updates
// Redis, so its consent state can be rebuilt from the stream. Changes are
// authorization evidence: the stream has no age limit and refuses deletes
// and purges.
func Consent(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamConsent,
		Description: "Consent changes (carenotify.events.v1.ConsentChange), sealed.",
		Subjects:    []string{"consent.*.*.*"},
		Retention:   jetstream.LimitsPolicy,
		Duplicates:  2 * time.Minute,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		DenyDelete:  true,
		DenyPurge:   true,
	}
}
