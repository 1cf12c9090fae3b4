// Package metrics holds ingest's Prometheus counters, registered on the
// service's own registry (pkg/telemetry). Label values are source names,
// tenants, notification types, kinds, actions, outcomes and reason codes:
// bounded, configured or fixed sets, never PHI.
package metrics
