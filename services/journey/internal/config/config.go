// Package config holds the journey service's configuration.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// Config is the journey service's configuration, read from JOURNEY_*
// variables. Defaults live in the tags; the service README lists every
// variable.
type Config struct {
	// HTTPAddr serves /metrics, /healthz, /readyz and GET /v1/journeys.
	HTTPAddr string `env:"JOURNEY_HTTP_ADDR" envDefault:":8081"`
	// GRPCAddr serves carenotify.journey.v1.AdminService.
	GRPCAddr string `env:"JOURNEY_GRPC_ADDR" envDefault:":9101"`

	// HTTPListener and GRPCListener, when set (by tests), are used instead of
	// listening on HTTPAddr and GRPCAddr. Not read from the environment.
	HTTPListener net.Listener
	GRPCListener net.Listener
	// NATSURL is the NATS server with JetStream.
	NATSURL string `env:"JOURNEY_NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	// RedisURL is the Redis that keeps consent records and sent-email
	// mappings (redis://[:password@]host:port/db, rediss:// for TLS).
	RedisURL string `env:"JOURNEY_REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"`
	// LogLevel is debug, info, warn or error.
	LogLevel slog.Level `env:"JOURNEY_LOG_LEVEL" envDefault:"info"`
	// ShutdownGrace is how long in-flight work may take after SIGTERM.
	ShutdownGrace time.Duration `env:"JOURNEY_SHUTDOWN_GRACE" envDefault:"10s"`
	// StreamReplicas is the replica count the EHR_EVENTS stream is declared
	// with (the Helm chart sets 3).
	StreamReplicas int `env:"JOURNEY_STREAM_REPLICAS" envDefault:"1"`
	// JourneysDir holds the journey files (*.yaml, *.yml), one journey each.
	JourneysDir string `env:"JOURNEY_JOURNEYS_DIR" envDefault:"deploy/examples/journeys"`
	// TemplatesDir holds the message template files (*.yaml, *.yml), one
	// template each.
	TemplatesDir string `env:"JOURNEY_TEMPLATES_DIR" envDefault:"deploy/examples/templates"`
	// EmailAddr is the email service's gRPC address (host:port).
	EmailAddr string `env:"JOURNEY_EMAIL_ADDR" envDefault:"127.0.0.1:9102"`
	// SMSAddr is the sms service's gRPC address (host:port); empty means
	// no SMS channel: send: sms steps are refused (and fall back).
	SMSAddr string `env:"JOURNEY_SMS_ADDR"`
	// SMSCountryCode is the country calling code (digits) given to
	// national phone numbers from the EHR, e.g. "1" for the US.
	SMSCountryCode string `env:"JOURNEY_SMS_COUNTRY_CODE" envDefault:"1"`
	// KeyringDir is the directory of key-encryption key files that protect
	// PHI at rest (see pkg/envelope); journey needs it to open events.
	KeyringDir string `env:"JOURNEY_KEYRING_DIR"`
	// AuditPseudonymKeyFile is the key that turns patient ids into keyed
	// hashes in the audit trail (see pkg/audit).
	AuditPseudonymKeyFile string `env:"JOURNEY_AUDIT_PSEUDONYM_KEY_FILE"`
	// AuditSigningKeyFile signs the audit trail's checkpoints; optional.
	AuditSigningKeyFile string `env:"JOURNEY_AUDIT_SIGNING_KEY_FILE"`
	// SendTimeout is the deadline of one call to a channel service's Send.
	SendTimeout time.Duration `env:"JOURNEY_SEND_TIMEOUT" envDefault:"10s"`
	// AdminTokensFile lists the admin API's bearer tokens by hash, one per
	// line (see internal/adminauth); optional.
	AdminTokensFile string `env:"JOURNEY_ADMIN_TOKENS_FILE"`
	// AdminTokens holds more such lines, separated by ';'; optional.
	// Without any token the admin API refuses every call.
	AdminTokens string `env:"JOURNEY_ADMIN_TOKENS"`
	// Timezone is the IANA time zone (e.g. "America/Chicago") in which
	// templates format dates and times and quiet hours are kept.
	Timezone string `env:"JOURNEY_TIMEZONE" envDefault:"UTC"`
	// Language is the BCP-47 tag of the language messages fall back to
	// when a template has no version in the patient's language.
	Language string `env:"JOURNEY_LANGUAGE" envDefault:"en"`
	// TenantsFile, if set, is a YAML file of per-tenant defaults (the
	// language) for tenants that differ from the deployment's.
	TenantsFile string `env:"JOURNEY_TENANTS_FILE"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	required := []struct{ name, value string }{
		{"JOURNEY_HTTP_ADDR", c.HTTPAddr},
		{"JOURNEY_GRPC_ADDR", c.GRPCAddr},
		{"JOURNEY_NATS_URL", c.NATSURL},
		{"JOURNEY_REDIS_URL", c.RedisURL},
		{"JOURNEY_JOURNEYS_DIR", c.JourneysDir},
		{"JOURNEY_TEMPLATES_DIR", c.TemplatesDir},
		{"JOURNEY_EMAIL_ADDR", c.EmailAddr},
		{"JOURNEY_KEYRING_DIR", c.KeyringDir},
		{"JOURNEY_AUDIT_PSEUDONYM_KEY_FILE", c.AuditPseudonymKeyFile},
	}
	for _, r := range required {
		if r.value == "" {
			errs = append(errs, fmt.Errorf("%s is required", r.name))
		}
	}
	if c.RedisURL != "" && !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") {
		// The URL may hold a password: don't echo it.
		errs = append(errs, errors.New("JOURNEY_REDIS_URL must be a redis:// or rediss:// URL"))
	}
	if c.ShutdownGrace <= 0 {
		errs = append(errs, errors.New("JOURNEY_SHUTDOWN_GRACE must be positive"))
	}
	if c.SendTimeout <= 0 {
		errs = append(errs, errors.New("JOURNEY_SEND_TIMEOUT must be positive"))
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		errs = append(errs, errors.New("JOURNEY_STREAM_REPLICAS must be between 1 and 5"))
	}
	if _, err := c.Location(); err != nil {
		errs = append(errs, err)
	}
	if n := len(c.SMSCountryCode); n < 1 || n > 3 || strings.Trim(c.SMSCountryCode, "0123456789") != "" || c.SMSCountryCode[0] == '0' {
		errs = append(errs, errors.New("JOURNEY_SMS_COUNTRY_CODE must be a country calling code: 1 to 3 digits, not starting with 0"))
	}
	if _, err := catalog.CanonicalLanguage(c.Language); err != nil {
		errs = append(errs, fmt.Errorf("JOURNEY_LANGUAGE: %w", err))
	}
	if _, err := c.Tenants(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Location returns the time zone named by Timezone.
func (c *Config) Location() (*time.Location, error) {
	if c.Timezone == "" {
		return nil, errors.New("JOURNEY_TIMEZONE is required (an IANA name such as UTC or America/Chicago)")
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return nil, fmt.Errorf("JOURNEY_TIMEZONE %q is not a known time zone (want an IANA name such as UTC or America/Chicago)", c.Timezone)
	}
	return loc, nil
}
