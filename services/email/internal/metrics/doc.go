// Package metrics holds the email service's Prometheus metrics. Label
// values are tenants, outcomes and statuses only, never PHI.
package metrics
