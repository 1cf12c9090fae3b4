// Package metrics holds the sms service's Prometheus metrics. No label
// value is ever caller input or PHI: tenants are checked tokens, the rest
// fixed codes.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Send outcomes, the values of sms_sends_total's outcome label.
const (
	OutcomeQueued      = "queued"
	OutcomeDuplicate   = "duplicate"
	OutcomeInvalid     = "invalid"
	OutcomeUnavailable = "unavailable"
)

// InvalidTenant is the tenant label of a request whose tenant is not a
// valid token, so that arbitrary caller input never becomes a label value.
const InvalidTenant = "_invalid"

// Metrics are the sms service's own metrics.
type Metrics struct {
	sends           *prometheus.CounterVec
	segments        prometheus.Counter
	deliveries      *prometheus.CounterVec
	providerSeconds prometheus.Histogram
	callbacks       *prometheus.CounterVec
}

// New registers the metrics on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sms_sends_total",
			Help: "Send calls by tenant and outcome (queued, duplicate, invalid, unavailable).",
		}, []string{"tenant", "outcome"}),
		segments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sms_segments_queued_total",
			Help: "SMS segments of the messages queued (what the provider bills).",
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sms_deliveries_total",
			Help: "Delivery outcomes by status (sent, deferred, failed, delivered, undelivered).",
		}, []string{"status"}),
		providerSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sms_provider_request_seconds",
			Help:    "Time one request to the provider's Messages API took.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sms_callbacks_total",
			Help: "Provider webhooks by kind (status, inbound) and outcome (recorded, ignored, unknown, bad_signature, malformed, unavailable, stop, start, help, other).",
		}, []string{"kind", "outcome"}),
	}
	reg.MustRegister(m.sends, m.segments, m.deliveries, m.providerSeconds, m.callbacks)
	return m
}

// Send counts one Send call. tenant must already be a valid token or
// InvalidTenant.
func (m *Metrics) Send(tenant, outcome string) { m.sends.WithLabelValues(tenant, outcome).Inc() }

// Segments counts the segments of a queued message.
func (m *Metrics) Segments(n int) { m.segments.Add(float64(n)) }

// Delivery counts one delivery outcome.
func (m *Metrics) Delivery(status string) { m.deliveries.WithLabelValues(status).Inc() }

// ProviderDuration records how long one provider request took.
func (m *Metrics) ProviderDuration(d time.Duration) { m.providerSeconds.Observe(d.Seconds()) }

// Callback counts one webhook. kind and outcome are fixed codes.
func (m *Metrics) Callback(kind, outcome string) { m.callbacks.WithLabelValues(kind, outcome).Inc() }
