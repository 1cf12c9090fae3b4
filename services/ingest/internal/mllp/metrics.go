package mllp

import "github.com/prometheus/client_golang/prometheus"

// Metrics count HL7 v2 messages.
type Metrics struct {
	messages *prometheus.CounterVec
}

// NewMetrics registers ingest_hl7_messages_total on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{messages: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ingest_hl7_messages_total",
		Help: "HL7 v2 messages received over MLLP, by source, message type (mapped types, else \"other\" or \"unknown\") and acknowledgment code sent (\"none\" when MSH-15 asked for none).",
	}, []string{"source", "type", "ack"})}
	reg.MustRegister(m.messages)
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
