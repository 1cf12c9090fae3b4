package service

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/audit"
)

// trail reads the AUDIT stream for the admin API's Trace.
type trail struct {
	js  jetstream.JetStream
	key []byte
}

func (t trail) Query(ctx context.Context, f audit.Filter) ([]audit.Record, error) {
	return audit.Query(ctx, t.js, f)
}

func (t trail) PatientRef(tenant, patient string) string {
	return audit.PatientRef(t.key, tenant, patient)
}
