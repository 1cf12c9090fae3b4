// Package telemetry gives each service its own Prometheus registry and the
// operational HTTP endpoints: /metrics (Prometheus text format), /healthz
// (the process is alive) and /readyz (its dependencies answer).
//
// Metric label values never carry PHI: use tenant, channel, status, reason
// codes and method names only.
package telemetry
