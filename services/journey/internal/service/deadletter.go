package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/services/journey/internal/server"
)

// deadLetter keeps events journey refuses on EHR_DEAD, subject
// dead.ehr.<tenant>.journey, sealed like every dead letter (the bytes may be
// PHI), with the reason in Cn-Reason and the SHA-256 of the bytes as the
// Nats-Msg-Id.
func deadLetter(js jetstream.JetStream, sealer *envelope.Sealer) server.DeadLetter {
	return func(ctx context.Context, tenant, reason string, data []byte) error {
		subject, err := bus.Subject("dead", "ehr", tenant, "journey")
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		id := hex.EncodeToString(sum[:])
		sealed, err := sealer.Seal(ctx, data, envelope.Binding{Tenant: tenant, Kind: envelope.KindEHRDead, ID: id})
		if err != nil {
			return fmt.Errorf("seal dead letter: %w", err)
		}
		hdr := nats.Header{}
		hdr.Set(bus.HeaderTenant, tenant)
		hdr.Set(bus.HeaderSource, "journey")
		hdr.Set(bus.HeaderReason, reason)
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = bus.Publish(ctx, js, subject, sealed, id, hdr)
		return err
	}
}
