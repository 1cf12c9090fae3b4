// Package embedded runs a NATS server with JetStream inside the current
// process, for tests and for the one-machine development stack. Production
// deployments use a NATS cluster (the Helm chart's or the hospital's own).
package embedded
