package audit

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/bus"
)

// NewServiceWriter is what a service does at start: declare the AUDIT
// stream, load the pseudonym key (required) and the checkpoint signing key
// (optional: without it no checkpoints are written), and return a Writer
// for service. Close it on shutdown so the last checkpoint is written.
func NewServiceWriter(ctx context.Context, js jetstream.JetStream, service, pseudonymKeyFile, signingKeyFile string, replicas int) (*Writer, error) {
	if err := bus.EnsureStreams(ctx, js, bus.Audit(replicas)); err != nil {
		return nil, err
	}
	pk, err := LoadPseudonymKey(pseudonymKeyFile)
	if err != nil {
		return nil, fmt.Errorf("audit pseudonym key: %w", err)
	}
	var opts []Option
	if signingKeyFile != "" {
		sk, err := LoadSigningKey(signingKeyFile)
		if err != nil {
			return nil, fmt.Errorf("audit signing key: %w", err)
		}
		opts = append(opts, WithSigningKey(sk))
	}
	return NewWriter(ctx, js, service, pk, opts...)
}
