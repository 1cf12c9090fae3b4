package envelope

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
)

// Binding kinds used across services. A sealed value only opens with the
// same tenant, kind and id it was sealed with.
const (
	// KindEHREvent is a ClinicalEvent body on EHR_EVENTS; ID is the event id.
	KindEHREvent = "ehr-event"
	// KindEHRDead is a dead-lettered input on EHR_DEAD; ID is its Nats-Msg-Id.
	KindEHRDead = "ehr-dead"
	// KindEmailOutbox is a queued email on OUTBOX_EMAIL; ID is the message id.
	KindEmailOutbox = "email-outbox"
	// KindSMSOutbox is a queued text message on OUTBOX_SMS; ID is the message id.
	KindSMSOutbox = "sms-outbox"
)

// NewServiceSealer is what a service does at start: load the keyring from
// dir, log its warnings (never key bytes), open or create the CN_DATA_KEYS
// bucket with replicas, and return a Sealer.
func NewServiceSealer(ctx context.Context, js jetstream.JetStream, dir string, replicas int, logger *slog.Logger) (*Sealer, error) {
	kr, err := LoadKeyring(dir)
	if err != nil {
		return nil, fmt.Errorf("load keyring: %w", err)
	}
	for _, w := range kr.Warnings() {
		logger.Warn("keyring", "warning", w)
	}
	ks, err := NewKVStore(ctx, js, replicas)
	if err != nil {
		return nil, fmt.Errorf("data key store: %w", err)
	}
	logger.Info("keyring loaded", "primary", kr.Primary(), "keys", len(kr.IDs()))
	return NewSealer(kr, ks), nil
}
