package mllp

import "github.com/prometheus/client_golang/prometheus"

// Metrics count HL7 v2 messages.
type Metrics struct {
	messages *prometheus.CounterVec
	refusals *prometheus.CounterVec
}

// NewMetrics registers ingest_hl7_messages_total on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{messages: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ingest_hl7_messages_total",
		Help: "HL7 v2 messages received over MLLP, by source, message type (mapped types, else \"other\" or \"unknown\") and acknowledgment code sent (\"none\" when MSH-15 asked for none).",
	}, []string{"source", "type", "ack"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingest_mllp_connections_refused_total",
			Help: "MLLP connections closed before any message because the client certificate named no source, by reason (mtls_handshake, mtls_no_certificate, mtls_wrong_identity).",
		}, []string{"reason"})}
	reg.MustRegister(m.messages, m.refusals)
	return m
}

// typeLabel bounds the type label: only types ingest maps are named.
func typeLabel(typ string, supported bool) string {
	switch {
	case typ == "":
		return "unknown"
	case supported:
		return typ
	}
	return "other"
}

func (m *Metrics) message(source, typ, ack string) {
	if m != nil {
		m.messages.WithLabelValues(source, typ, ack).Inc()
	}
}

func (m *Metrics) refused(reason string) {
	if m != nil {
		m.refusals.WithLabelValues(reason).Inc()
	}
}
