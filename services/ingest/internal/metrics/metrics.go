package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/carenotify/carenotify/services/ingest/internal/app"
)

// Metrics are ingest's counters.
type Metrics struct {
	notifications *prometheus.CounterVec
	events        *prometheus.CounterVec
	deadLetters   *prometheus.CounterVec
	pushes        *prometheus.CounterVec
	gaps          *prometheus.CounterVec
	overdue       *prometheus.GaugeVec
	unchanged     *prometheus.CounterVec
	duplicates    *prometheus.CounterVec
	inputs        inputMetrics
}

var _ app.Metrics = (*Metrics)(nil)

// New registers ingest's counters on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingest_notifications_total",
			Help: "Notifications received, by source, notification type and outcome.",
		}, []string{"source", "type", "outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingest_events_published_total",
			Help: "Clinical events newly stored on EHR_EVENTS (duplicates not counted), by tenant, kind and action.",
		}, []string{"tenant", "kind", "action"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingest_dead_letters_total",
			Help: "Inputs stored on EHR_DEAD for replay, by source and reason.",
		}, []string{"source", "reason"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingest_fhir_push_total",
			Help: "FHIR REST pushes received, by source, push type (Bundle type or resource) and outcome.",
		}, []string{"source", "type", "outcome"}),
	}
	m.gaps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ingest_subscription_gaps_total",
		Help: "Gaps in subscription event numbers detected, by source (recovered ones: ingest_subscription_gaps_recovered_total).",
	}, []string{"source"})
	m.overdue = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ingest_subscription_heartbeat_overdue",
		Help: "Subscriptions whose last notification is older than twice their heartbeat period, by source.",
	}, []string{"source"})
	m.unchanged = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ingest_state_unchanged_total",
		Help: "Resources received that made no transition from their last-seen state (accepted, no event), by source, kind and reason.",
	}, []string{"source", "kind", "reason"})
	m.duplicates = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ingest_duplicates_total",
		Help: "Duplicates recognised, by source, input path, message type and reason: resent_control_id (an HL7 v2 resend answered with its stored ACK, not processed again; per message), same_version (a resource version already seen; per resource), already_stored (an event JetStream already held; per event).",
	}, []string{"source", "input", "type", "reason"})
	reg.MustRegister(m.notifications, m.events, m.deadLetters, m.pushes, m.gaps, m.overdue, m.unchanged, m.duplicates)
	m.inputs = newInputMetrics(reg)
	return m
}

// Notification counts a notification. source must be a configured source
// name (or "unknown"), typ a known notification type (or "unknown").
func (m *Metrics) Notification(source, typ, outcome string) {
	m.notifications.WithLabelValues(source, typ, outcome).Inc()
}

// Push counts a FHIR REST push. source must be a configured source name
// (or "unknown"), typ a Bundle type, "resource" or "unknown".
func (m *Metrics) Push(source, typ, outcome string) {
	m.pushes.WithLabelValues(source, typ, outcome).Inc()
}

// EventPublished counts a newly stored event.
func (m *Metrics) EventPublished(tenant, kind, action string) {
	m.events.WithLabelValues(tenant, kind, action).Inc()
}

// StateUnchanged counts a resource that made no transition. reason is an
// app.Unchanged* code.
func (m *Metrics) StateUnchanged(source, kind, reason string) {
	m.unchanged.WithLabelValues(source, kind, reason).Inc()
}

// DeadLettered counts an input stored for replay.
func (m *Metrics) DeadLettered(source, reason string) {
	m.deadLetters.WithLabelValues(source, reason).Inc()
}

// SubscriptionGap counts a gap in a subscription's event numbers.
func (m *Metrics) SubscriptionGap(source string) {
	m.gaps.WithLabelValues(source).Inc()
}

// HeartbeatOverdue sets how many of source's subscriptions are overdue.
func (m *Metrics) HeartbeatOverdue(source string, overdue int) {
	m.overdue.WithLabelValues(source).Set(float64(overdue))
}

// Duplicate counts an input that was not processed again. typ must be a
// bounded type label, reason a fixed code.
func (m *Metrics) Duplicate(source, input, typ, reason string) {
	m.duplicates.WithLabelValues(source, input, typ, reason).Inc()
}
