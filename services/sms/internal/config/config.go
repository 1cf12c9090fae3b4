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
	// HTTPAddr serves /metrics, /healthz and /readyz.
	HTTPAddr string `env:"SMS_HTTP_ADDR" envDefault:":8083"`
	// GRPCAddr serves carenotify.sms.v1.SmsService.
	GRPCAddr string `env:"SMS_GRPC_ADDR" envDefault:":9103"`

	// HTTPListener and GRPCListener, when set (by tests), are used instead of
	// listening on HTTPAddr and GRPCAddr. Not read from the environment.
	HTTPListener net.Listener
	GRPCListener net.Listener
	// NATSURL is the NATS server with JetStream.
	NATSURL string `env:"SMS_NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	// LogLevel is debug, info, warn or error.
	LogLevel slog.Level `env:"SMS_LOG_LEVEL" envDefault:"info"`
	// ShutdownGrace is how long in-flight work may take after SIGTERM.
	ShutdownGrace time.Duration `env:"SMS_SHUTDOWN_GRACE" envDefault:"10s"`
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
	if c.ShutdownGrace <= 0 {
		errs = append(errs, errors.New("SMS_SHUTDOWN_GRACE must be positive"))
	}
	return errors.Join(errs...)
}
