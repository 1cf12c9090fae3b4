package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// Outcomes of an event, the outcome label of journey_events_total.
const (
	eventUndecodable = "undecodable" // opened, but not a ClinicalEvent; terminated
	eventRefused     = "refused"     // not sealed, or failed its integrity check; dead-lettered and terminated
	eventUnmatched   = "unmatched"   // no journey starts on it; acknowledged
	eventHandled     = "handled"     // its journeys ran; acknowledged
	eventRetry       = "retry"       // redelivered after a backoff
	eventFailed      = "failed"      // terminated: retrying cannot help
)

// Opener opens sealed event bodies (an *envelope.Sealer).
type Opener interface {
	Open(ctx context.Context, sealed []byte, b envelope.Binding) ([]byte, error)
}

// DeadLetter keeps a refused message for inspection and replay; it must
// store data sealed, since it may be PHI.
type DeadLetter func(ctx context.Context, tenant, reason string, data []byte) error

// Events handles messages of the EHR_EVENTS stream.
type Events struct {
	app    *app.Service
	opener Opener
	dead   DeadLetter
	events *prometheus.CounterVec
}

// NewEvents returns the EHR_EVENTS handler, with its metrics registered on reg.
func NewEvents(a *app.Service, opener Opener, dead DeadLetter, reg prometheus.Registerer) *Events {
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "journey_events_total",
		Help: "Clinical events consumed, by kind, action and outcome " +
			"(undecodable, unmatched, handled, retry, failed). Kinds and actions outside the known events count as \"other\".",
	}, []string{"kind", "action", "outcome"})
	reg.MustRegister(events)
	return &Events{app: a, opener: opener, dead: dead, events: events}
}

// Handle is a [bus.Handler]: it decodes a ClinicalEvent and runs its
// journeys. An undecodable message or a failure retrying cannot fix is
// [bus.Permanent]; other failures are retried. Nothing it logs or returns
// carries PHI.
func (h *Events) Handle(ctx context.Context, msg jetstream.Msg) error {
	tenant := msg.Headers().Get(bus.HeaderTenant)
	plain, err := h.opener.Open(ctx, msg.Data(), envelope.Binding{
		Tenant: tenant, Kind: envelope.KindEHREvent, ID: msg.Headers().Get(jetstream.MsgIDHeader),
	})
	switch {
	case errors.Is(err, envelope.ErrUnknownKey):
		// This service may not have the KEK yet (a rotation in progress).
		h.events.WithLabelValues("other", "other", eventRetry).Inc()
		return fmt.Errorf("open clinical event: %w", err)
	case err != nil:
		// Tampered, moved from another record, or never sealed: refuse it,
		// and keep it (sealed) for inspection instead of dropping it.
		if !bus.ValidToken(tenant) {
			tenant = "unknown"
		}
		if derr := h.dead(ctx, tenant, "refused_integrity", msg.Data()); derr != nil {
			h.events.WithLabelValues("other", "other", eventRetry).Inc()
			return fmt.Errorf("dead-letter refused event: %w", derr)
		}
		h.events.WithLabelValues("other", "other", eventRefused).Inc()
		return bus.Permanent(errors.New("refused clinical event: not sealed or failed its integrity check; dead-lettered"))
	}
	var ev eventsv1.ClinicalEvent
	if err := proto.Unmarshal(plain, &ev); err != nil {
		h.events.WithLabelValues("other", "other", eventUndecodable).Inc()
		// bus.Consume logs this with the NATS subject, which is routing
		// metadata (tenant, kind, action) and never PHI; the body may be
		// PHI, so neither it nor the decoder's error is logged.
		return bus.Permanent(errors.New("decode clinical event: not a carenotify.events.v1.ClinicalEvent"))
	}
	kind, action := labels(ev.GetKind(), ev.GetAction())
	res, err := h.app.HandleEvent(ctx, &ev)
	switch {
	case err == nil && res.Journeys == 0 && res.Cancels == 0 && res.Replans == 0 && res.Waits == 0:
		h.events.WithLabelValues(kind, action, eventUnmatched).Inc()
		return nil
	case err == nil:
		h.events.WithLabelValues(kind, action, eventHandled).Inc()
		return nil
	case app.IsPermanent(err):
		h.events.WithLabelValues(kind, action, eventFailed).Inc()
		return bus.Permanent(err)
	default:
		h.events.WithLabelValues(kind, action, eventRetry).Inc()
		return err
	}
}

// labels bounds the kind and action label values to the known events, so
// a misbehaving producer cannot grow the metric without limit.
func labels(kind, action string) (string, string) {
	var kindKnown, actionKnown bool
	for _, t := range catalog.KnownTriggers() {
		k, a, _ := strings.Cut(t, ".")
		kindKnown = kindKnown || k == kind
		actionKnown = actionKnown || a == action
	}
	if !kindKnown {
		kind = "other"
	}
	if !actionKnown {
		action = "other"
	}
	return kind, action
}
