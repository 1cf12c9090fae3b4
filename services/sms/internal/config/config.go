// Package config holds the sms service's configuration.
package config

import (
	"errors"
	"log/slog"
	"net"
	"time"
)

// Config is the sms service's configuration, read from SMS_* variables.
// Defaults live in the tags; the service README lists every variable.
type Config struct {
	// HTTPAddr serves /metrics, /healthz and /readyz (and, later, the
	// provider's webhooks).
	HTTPAddr string `env:"SMS_HTTP_ADDR" envDefault:":8083"`
	// GRPCAddr serves carenotify.sms.v1.SmsService.
	GRPCAddr string `env:"SMS_GRPC_ADDR" envDefault:":9103"`

	// HTTPListener and GRPCListener, when set (by tests), are used instead of
	// listening on HTTPAddr and GRPCAddr. Not read from the environment.
	HTTPListener net.Listener
	GRPCListener net.Listener
	// NATSURL is the NATS server with JetStream.
	NATSURL string `env:"SMS_NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	// RedisURL holds idempotency keys and delivery records.
	RedisURL string `env:"SMS_REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"`
	// LogLevel is debug, info, warn or error.
	LogLevel slog.Level `env:"SMS_LOG_LEVEL" envDefault:"info"`
	// ShutdownGrace is how long in-flight work may take after SIGTERM.
	ShutdownGrace time.Duration `env:"SMS_SHUTDOWN_GRACE" envDefault:"10s"`
	// StreamReplicas is the replica count of the streams the service declares.
	StreamReplicas int `env:"SMS_STREAM_REPLICAS" envDefault:"1"`
	// KeyringDir is the directory of key-encryption key files (see
	// pkg/envelope) that protect the data keys sealing the outbox.
	KeyringDir string `env:"SMS_KEYRING_DIR"`

	// DefaultExpiry is how long a message is tried when Send sets no expiry.
	DefaultExpiry time.Duration `env:"SMS_DEFAULT_EXPIRY" envDefault:"4h"`
	// MaxSegments caps how many SMS segments one body may take.
	MaxSegments int `env:"SMS_MAX_SEGMENTS" envDefault:"10"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.HTTPAddr == "" {
		errs = append(errs, errors.New("SMS_HTTP_ADDR is required"))
	}
	if c.GRPCAddr == "" {
		errs = append(errs, errors.New("SMS_GRPC_ADDR is required"))
	}
	if c.NATSURL == "" {
		errs = append(errs, errors.New("SMS_NATS_URL is required"))
	}
	if c.RedisURL == "" {
		errs = append(errs, errors.New("SMS_REDIS_URL is required"))
	}
	if c.ShutdownGrace <= 0 {
		errs = append(errs, errors.New("SMS_SHUTDOWN_GRACE must be positive"))
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		errs = append(errs, errors.New("SMS_STREAM_REPLICAS must be 1 to 5"))
	}
	if c.DefaultExpiry <= 0 {
		errs = append(errs, errors.New("SMS_DEFAULT_EXPIRY must be positive"))
	}
	// Twilio accepts bodies up to 1,600 characters: 10 segments of 153
	// GSM-7 septets, and carriers reassemble long messages less reliably.
	if c.MaxSegments < 1 || c.MaxSegments > 10 {
		errs = append(errs, errors.New("SMS_MAX_SEGMENTS must be 1 to 10"))
	}
	return errors.Join(errs...)
}
