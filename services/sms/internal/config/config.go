// Package config holds the sms service's configuration.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	pkgconfig "github.com/carenotify/carenotify/pkg/config"
	"github.com/carenotify/carenotify/pkg/phone"
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

	// AuditPseudonymKeyFile is the key that turns patient ids into keyed
	// hashes in the audit trail (see pkg/audit); phone numbers are hashed
	// with a key derived from it (pkg/phone). Required.
	AuditPseudonymKeyFile string `env:"SMS_AUDIT_PSEUDONYM_KEY_FILE"`
	// AuditSigningKeyFile signs the audit trail's checkpoints; optional.
	AuditSigningKeyFile string `env:"SMS_AUDIT_SIGNING_KEY_FILE"`

	// TwilioBaseURL is the base of Twilio's REST API.
	TwilioBaseURL string `env:"SMS_TWILIO_BASE_URL" envDefault:"https://api.twilio.com"`
	// TwilioAccountSID is the account ("AC" and 32 hex digits).
	TwilioAccountSID string `env:"SMS_TWILIO_ACCOUNT_SID"`
	// TwilioAuthToken authenticates API calls and verifies webhook
	// signatures. Prefer TwilioAuthTokenFile.
	TwilioAuthToken pkgconfig.Secret `env:"SMS_TWILIO_AUTH_TOKEN"`
	// TwilioAuthTokenFile holds the token read from the file that
	// SMS_TWILIO_AUTH_TOKEN_FILE names (a mounted secret).
	TwilioAuthTokenFile pkgconfig.Secret `env:"SMS_TWILIO_AUTH_TOKEN_FILE,file"`
	// TwilioFrom is the default sender: an E.164 number or a messaging
	// service SID ("MG…").
	TwilioFrom string `env:"SMS_TWILIO_FROM"`
	// TwilioSenders gives tenants their own sender:
	// "tenant=+15550001111,other=MG…". Inbound messages to a sender are
	// the listed tenant's.
	TwilioSenders string `env:"SMS_TWILIO_SENDERS"`
	// PublicURL is the base URL at which Twilio reaches this service's
	// HTTP server (e.g. "https://sms.hospital.example"): status callbacks
	// are <PublicURL>/twilio/status and signatures are checked against it.
	// Without it no receipts are asked for and the webhooks answer 404.
	PublicURL string `env:"SMS_PUBLIC_URL"`

	// KeywordReplies turns the TwiML replies to STOP, START and HELP on;
	// turn it off when Twilio's Advanced Opt-Out answers them itself.
	KeywordReplies bool `env:"SMS_KEYWORD_REPLIES" envDefault:"true"`
	// ReplyStop, ReplyStart and ReplyHelp are those replies. They go to
	// whoever texted the number: no PHI.
	ReplyStop  string `env:"SMS_REPLY_STOP" envDefault:"You are unsubscribed and will receive no more text messages from us. Reply START to resubscribe."`
	ReplyStart string `env:"SMS_REPLY_START" envDefault:"You are resubscribed to text messages from us. Reply STOP to unsubscribe, HELP for help."`
	ReplyHelp  string `env:"SMS_REPLY_HELP" envDefault:"Appointment and care messages from your clinic. Reply STOP to unsubscribe, START to resubscribe. For help, call your clinic."`

	// Workers is how many messages are handed to the provider at once.
	Workers int `env:"SMS_WORKERS" envDefault:"4"`
	// SendTimeout bounds one request to the provider.
	SendTimeout time.Duration `env:"SMS_SEND_TIMEOUT" envDefault:"15s"`
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
	if c.AuditPseudonymKeyFile == "" {
		errs = append(errs, errors.New("SMS_AUDIT_PSEUDONYM_KEY_FILE is required"))
	}
	if !accountSIDRE.MatchString(c.TwilioAccountSID) {
		errs = append(errs, errors.New("SMS_TWILIO_ACCOUNT_SID must be AC followed by 32 hex digits"))
	}
	if c.AuthToken() == "" {
		errs = append(errs, errors.New("SMS_TWILIO_AUTH_TOKEN or SMS_TWILIO_AUTH_TOKEN_FILE is required"))
	}
	if u, err := url.Parse(c.TwilioBaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, errors.New("SMS_TWILIO_BASE_URL must be an http(s) URL"))
	}
	if c.TwilioFrom != "" && !validSender(c.TwilioFrom) {
		errs = append(errs, errors.New("SMS_TWILIO_FROM must be an E.164 number or a messaging service SID (MG and 32 hex digits)"))
	}
	if _, err := c.Senders(); err != nil {
		errs = append(errs, err)
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
			errs = append(errs, errors.New("SMS_PUBLIC_URL must be an http(s) URL without a query"))
		}
	}
	if c.Workers < 1 {
		errs = append(errs, errors.New("SMS_WORKERS must be at least 1"))
	}
	if c.SendTimeout <= 0 {
		errs = append(errs, errors.New("SMS_SEND_TIMEOUT must be positive"))
	}
	return errors.Join(errs...)
}

var (
	accountSIDRE = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	serviceSIDRE = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	tenantRE     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

func validSender(s string) bool { return phone.ValidE164(s) || serviceSIDRE.MatchString(s) }

// AuthToken returns the Twilio auth token from SMS_TWILIO_AUTH_TOKEN or
// the file SMS_TWILIO_AUTH_TOKEN_FILE names, without a trailing newline.
func (c *Config) AuthToken() string {
	if c.TwilioAuthTokenFile != "" {
		return strings.TrimRight(string(c.TwilioAuthTokenFile), "\r\n")
	}
	return string(c.TwilioAuthToken)
}

// InboundTenant returns the tenant an inbound text to our number or
// messaging service to belongs to: the one tenant whose
// SMS_TWILIO_SENDERS entry it is. A sender shared by several tenants, or
// only SMS_TWILIO_FROM, names none.
func InboundTenant(senders map[string]string) func(to string) (string, bool) {
	byNumber := map[string][]string{}
	for tenant, sender := range senders {
		byNumber[sender] = append(byNumber[sender], tenant)
	}
	return func(to string) (string, bool) {
		if ts := byNumber[to]; len(ts) == 1 {
			return ts[0], true
		}
		return "", false
	}
}

// Senders parses SMS_TWILIO_SENDERS into tenant → sender.
func (c *Config) Senders() (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(c.TwilioSenders) == "" {
		if c.TwilioFrom == "" {
			return nil, errors.New("SMS_TWILIO_FROM or SMS_TWILIO_SENDERS is required")
		}
		return out, nil
	}
	for _, item := range strings.Split(c.TwilioSenders, ",") {
		tenant, sender, ok := strings.Cut(strings.TrimSpace(item), "=")
		switch {
		case !ok || !tenantRE.MatchString(tenant):
			return nil, fmt.Errorf("SMS_TWILIO_SENDERS: %q is not tenant=sender", item)
		case !validSender(sender):
			return nil, fmt.Errorf("SMS_TWILIO_SENDERS: the sender of tenant %s must be an E.164 number or a messaging service SID", tenant)
		case out[tenant] != "":
			return nil, fmt.Errorf("SMS_TWILIO_SENDERS: tenant %s is listed twice", tenant)
		}
		out[tenant] = sender
	}
	return out, nil
}
