package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Send outcomes, the values of email_sends_total's outcome label.
const (
	OutcomeQueued      = "queued"
	OutcomeDuplicate   = "duplicate"
	OutcomeInvalid     = "invalid"
	OutcomeUnavailable = "unavailable"
	OutcomeSuppressed  = "suppressed"
)

// InvalidTenant is the tenant label of a request whose tenant is not a
// valid token, so that arbitrary caller input never becomes a label value.
const InvalidTenant = "_invalid"

// Metrics are the email service's own metrics.
type Metrics struct {
	sends           *prometheus.CounterVec
	deliveries      *prometheus.CounterVec
	deliverySeconds prometheus.Histogram
	feedback        *prometheus.CounterVec
	suppressions    *prometheus.CounterVec
	uncertain       prometheus.Counter
	encrypted       *prometheus.CounterVec
	throttled       *prometheus.CounterVec
	mtaSTS          *prometheus.CounterVec
}

// New registers the metrics on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "email_sends_total",
			Help: "Send calls by tenant and outcome (queued, duplicate, invalid, unavailable, suppressed).",
		}, []string{"tenant", "outcome"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "email_deliveries_total",
			Help: "Delivery outcomes by status (sent, deferred, bounced, failed).",
		}, []string{"status"}),
		deliverySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "email_delivery_seconds",
			Help:    "Time one SMTP delivery attempt took, connection included when a new one was opened.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 13),
		}),
	}
	m.feedback = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "email_feedback_total",
		Help: "Feedback after delivery by kind (unsubscribe, complaint, dsn_5xx, dsn_other, not_report, invalid, malformed) and outcome (recorded, unknown, refused, ignored).",
	}, []string{"kind", "outcome"})
	m.suppressions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "email_suppressions_total",
		Help: "Suppression list changes by reason (hard_bounce, complaint, removed) and source (smtp, dsn, arf, relay_hook, admin).",
	}, []string{"reason", "source"})
	m.uncertain = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "email_uncertain_resends_total",
		Help: "Delivery attempts made after an attempt that ended without recording its outcome (the process died mid-delivery): each may have sent a message a second time, with the same Message-ID.",
	})
	m.encrypted = prometheus.NewCounterVec(encryptedOpts, []string{"method"})
	m.throttled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "email_throttled_total",
		Help: "Deliveries put off without an attempt by a destination limit or the warm-up cap, by reason (concurrency, rate, warmup).",
	}, []string{"reason"})
	m.mtaSTS = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "email_mta_sts_total",
		Help: "Direct deliveries to a domain with an MTA-STS policy, by mode (enforce, testing) and result (ok, mx_mismatch per MX host skipped or only reported, tls_unverified: sent without verified TLS under testing).",
	}, []string{"mode", "result"})
	reg.MustRegister(m.sends, m.deliveries, m.deliverySeconds, m.feedback, m.suppressions, m.uncertain, m.encrypted, m.throttled, m.mtaSTS)
	return m
}

// Send counts one Send call. tenant must already be a valid token or
// InvalidTenant.
func (m *Metrics) Send(tenant, outcome string) {
	m.sends.WithLabelValues(tenant, outcome).Inc()
}

// Delivery counts one delivery outcome.
func (m *Metrics) Delivery(status string) {
	m.deliveries.WithLabelValues(status).Inc()
}

// DeliveryDuration records how long one SMTP attempt took.
func (m *Metrics) DeliveryDuration(d time.Duration) {
	m.deliverySeconds.Observe(d.Seconds())
}

// Feedback counts one piece of feedback (an unsubscribe, a bounce report,
// a complaint). kind and outcome are fixed codes, never caller input.
func (m *Metrics) Feedback(kind, outcome string) {
	m.feedback.WithLabelValues(kind, outcome).Inc()
}

// Suppression counts one address added to (reason hard_bounce, complaint)
// or removed from (reason removed) a suppression list. Both are fixed codes.
func (m *Metrics) Suppression(reason, source string) {
	m.suppressions.WithLabelValues(reason, source).Inc()
}

// UncertainResend counts one attempt after an attempt without outcome.
func (m *Metrics) UncertainResend() { m.uncertain.Inc() }

// encrypted counts sent messages encrypted for the recipient's key;
// registered by New.
var encryptedOpts = prometheus.CounterOpts{
	Name: "email_encrypted_total",
	Help: "Messages sent encrypted for the recipient's key on record, by method (smime, pgp).",
}

// Encrypted counts one message sent encrypted with method ("smime" or
// "pgp").
func (m *Metrics) Encrypted(method string) {
	m.encrypted.WithLabelValues(method).Inc()
}

// Throttled counts a delivery put off by a limit (reason: concurrency,
// rate, warmup).
func (m *Metrics) Throttled(reason string) { m.throttled.WithLabelValues(reason).Inc() }

// MTASTS counts an MTA-STS check of a direct delivery.
func (m *Metrics) MTASTS(mode, result string) { m.mtaSTS.WithLabelValues(mode, result).Inc() }
