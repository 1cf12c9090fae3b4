package consentlog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// Kind is the envelope binding kind of a sealed consent change.
const Kind = "consent-change"

// Log is app.ConsentLog on the CONSENT stream.
type Log struct {
	js     jetstream.JetStream
	sealer *envelope.Sealer
}

var _ app.ConsentLog = (*Log)(nil)

// New returns a Log publishing to and reading from js, sealing with sealer.
func New(js jetstream.JetStream, sealer *envelope.Sealer) *Log {
	return &Log{js: js, sealer: sealer}
}

// Subject is the subject of a change: consent.<tenant>.<channel>.<purpose>.
func Subject(tenant, channel string, purpose catalog.Purpose) string {
	return "consent." + tenant + "." + channel + "." + string(purpose)
}

// Publish implements app.ConsentLog: the change is sealed (bound to
// tenant, Kind and its id) and published with its id as Nats-Msg-Id; it
// returns once JetStream acknowledged it.
func (l *Log) Publish(ctx context.Context, c app.Consent, actor audit.Actor) error {
	id := newID()
	b, err := proto.Marshal(&eventsv1.ConsentChange{
		ChangeId: id, Tenant: c.Tenant, PatientId: c.Patient, Channel: c.Channel, Purpose: string(c.Purpose),
		State: string(c.State), Source: string(c.Source), ChangedAt: timestamppb.New(c.Time),
		EvidenceRef: c.EvidenceRef, Actor: string(actor.Type) + ":" + actor.ID,
	})
	if err != nil {
		return fmt.Errorf("publish consent change: %w", err)
	}
	sealed, err := l.sealer.Seal(ctx, b, envelope.Binding{Tenant: c.Tenant, Kind: Kind, ID: id})
	clear(b)
	if err != nil {
		return fmt.Errorf("publish consent change: %w", err)
	}
	h := nats.Header{bus.HeaderTenant: []string{c.Tenant}, bus.HeaderChannel: []string{c.Channel}}
	if _, err := bus.Publish(ctx, l.js, Subject(c.Tenant, c.Channel, c.Purpose), sealed, id, h); err != nil {
		return fmt.Errorf("publish consent change: %w", err)
	}
	return nil
}

// Replay implements app.ConsentLog: every change of tenant stored when it
// starts, oldest first. A change that does not open, or opens to another
// tenant or subject, is counted as refused and skipped.
func (l *Log) Replay(ctx context.Context, tenant string, fn func(app.Consent) error) (changes, refused int, err error) {
	err = bus.Scan(ctx, l.js, bus.StreamConsent, "consent."+tenant+".>", func(m jetstream.Msg) (bool, error) {
		changes++
		c, ok := l.open(ctx, tenant, m)
		if !ok {
			refused++
			return true, nil
		}
		return true, fn(c)
	})
	return changes, refused, err
}

// open opens one stored change.
func (l *Log) open(ctx context.Context, tenant string, m jetstream.Msg) (app.Consent, bool) {
	id := m.Headers().Get(jetstream.MsgIDHeader)
	if id == "" {
		return app.Consent{}, false
	}
	b, err := l.sealer.Open(ctx, m.Data(), envelope.Binding{Tenant: tenant, Kind: Kind, ID: id})
	if err != nil {
		return app.Consent{}, false
	}
	var ch eventsv1.ConsentChange
	err = proto.Unmarshal(b, &ch)
	clear(b)
	if err != nil || ch.GetTenant() != tenant || ch.GetChangeId() != id ||
		m.Subject() != Subject(tenant, ch.GetChannel(), catalog.Purpose(ch.GetPurpose())) {
		return app.Consent{}, false
	}
	return app.Consent{
		Tenant: tenant, Patient: ch.GetPatientId(), Channel: ch.GetChannel(), Purpose: catalog.Purpose(ch.GetPurpose()),
		State: app.ConsentState(ch.GetState()), Source: app.ConsentSource(ch.GetSource()),
		Time: ch.GetChangedAt().AsTime(), EvidenceRef: ch.GetEvidenceRef(),
	}, true
}

// newID is a random 128-bit change id in hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
