package server

import (
	"context"
	"errors"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/carenotify/carenotify/pkg/bus"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// Outcomes of an event, the outcome label of journey_events_total.
const (
	eventUndecodable = "undecodable" // not a ClinicalEvent; terminated
	eventUnmatched   = "unmatched"   // no journey starts on it; acknowledged
	eventHandled     = "handled"     // its journeys ran; acknowledged
	eventRetry       = "retry"       // redelivered after a backoff
	eventFailed      = "failed"      // terminated: retrying cannot help
)

// Events handles messages of the EHR_EVENTS stream.
type Events struct {
	app    *app.Service
	events *prometheus.CounterVec
}

// NewEvents returns the EHR_EVENTS handler, with its metrics registered on reg.
func NewEvents(a *app.Service, reg prometheus.Registerer) *Events {
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "journey_events_total",
		Help: "Clinical events consumed, by kind, action and outcome " +
			"(undecodable, unmatched, handled, retry, failed). Kinds and actions outside the known events count as \"other\".",
	}, []string{"kind", "action", "outcome"})
	reg.MustRegister(events)
	return &Events{app: a, events: events}
}

// Handle is a [bus.Handler]: it decodes a ClinicalEvent and runs its
// journeys. An undecodable message or a failure retrying cannot fix is
// [bus.Permanent]; other failures are retried. Nothing it logs or returns
// carries PHI.
func (h *Events) Handle(ctx context.Context, msg jetstream.Msg) error {
	var ev eventsv1.ClinicalEvent
	if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
		h.events.WithLabelValues("other", "other", eventUndecodable).Inc()
		// bus.Consume logs this with the NATS subject, which is routing
		// metadata (tenant, kind, action) and never PHI; the body may be
		// PHI, so neither it nor the decoder's error is logged.
		return bus.Permanent(errors.New("decode clinical event: not a carenotify.events.v1.ClinicalEvent"))
	}
	kind, action := labels(ev.GetKind(), ev.GetAction())
	res, err := h.app.HandleEvent(ctx, &ev)
	switch {
	case err == nil && res.Journeys == 0:
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
