package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Duplicate reasons of ingest_duplicates_total beside the HL7 resend
// (mllp.DuplicateResent).
const (
	// DuplicateSameVersion: a resource version the last-seen state had
	// seen (a retried notification, an HTTP resend), one per resource.
	DuplicateSameVersion = "same_version"
	// DuplicateAlreadyStored: an event JetStream already held under its
	// Nats-Msg-Id, one per event.
	DuplicateAlreadyStored = "already_stored"
)

// latencyBuckets span a cached ACK (sub-millisecond) to a slow id-only
// fetch (seconds), in seconds.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// inputMetrics are the per source, input path and message type families.
type inputMetrics struct {
	received  *prometheus.CounterVec
	published *prometheus.CounterVec
	rejected  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	recovered *prometheus.CounterVec
}

func newInputMetrics(reg prometheus.Registerer) inputMetrics {
	labels := []string{"source", "input", "type"}
	m := inputMetrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingest_received_total",
			Help: "Inputs received and answered (notifications, pushes, HL7 v2 messages), by source, input path (fhir-notification, fhir-push, hl7v2) and message type.",
		}, labels),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingest_published_total",
			Help: "Clinical events newly stored on EHR_EVENTS, by source, input path and message type of the input that gave them.",
		}, labels),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingest_rejected_total",
			Help: "Inputs answered with an error (HTTP 4xx/5xx, HL7 AE/AR/CE/CR) or with rejected batch entries, by source, input path, message type and reason code.",
		}, append(labels, "reason")),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ingest_response_seconds",
			Help:    "Time from receiving an input to its answer (HTTP: request start to response written; MLLP: frame read to ACK built, after the PubAck), by source, input path and message type.",
			Buckets: latencyBuckets,
		}, labels),
		recovered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingest_subscription_gaps_recovered_total",
			Help: "Gaps in subscription event numbers recovered, by source and method (events: $events; search: _lastUpdated search; late: the missing notifications arrived).",
		}, []string{"source", "method"}),
	}
	reg.MustRegister(m.received, m.published, m.rejected, m.latency, m.recovered)
	return m
}

// Input is one input answered, for Handled. Every string is a bounded,
// PHI-free label value.
type Input struct {
	// Source is a configured source name, or "unknown".
	Source string
	// Input is the path: app.InputFHIRNotification, app.InputFHIRPush
	// or app.InputHL7.
	Input string
	// Type is the notification type, Bundle type ("resource" for a
	// single resource) or HL7 message type label; "unknown" when unread.
	Type string
	// Published counts the events newly stored.
	Published int
	// SameVersion and AlreadyStored count duplicates found by the
	// last-seen state and by JetStream.
	SameVersion, AlreadyStored int
	// Rejected is the reason code when the input (or an entry of it) was
	// rejected; "" when it was accepted.
	Rejected string
	// Elapsed is the time from receipt to the answer; 0 records none.
	Elapsed time.Duration
}

// Handled counts one input answered.
func (m *Metrics) Handled(in Input) {
	m.inputs.received.WithLabelValues(in.Source, in.Input, in.Type).Inc()
	if in.Published > 0 {
		m.inputs.published.WithLabelValues(in.Source, in.Input, in.Type).Add(float64(in.Published))
	}
	if in.SameVersion > 0 {
		m.duplicates.WithLabelValues(in.Source, in.Input, in.Type, DuplicateSameVersion).Add(float64(in.SameVersion))
	}
	if in.AlreadyStored > 0 {
		m.duplicates.WithLabelValues(in.Source, in.Input, in.Type, DuplicateAlreadyStored).Add(float64(in.AlreadyStored))
	}
	if in.Rejected != "" {
		m.inputs.rejected.WithLabelValues(in.Source, in.Input, in.Type, in.Rejected).Inc()
	}
	if in.Elapsed > 0 {
		m.inputs.latency.WithLabelValues(in.Source, in.Input, in.Type).Observe(in.Elapsed.Seconds())
	}
}

// SubscriptionGapRecovered counts a gap recovered by method.
func (m *Metrics) SubscriptionGapRecovered(source, method string) {
	m.inputs.recovered.WithLabelValues(source, method).Inc()
}
