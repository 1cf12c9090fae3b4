package config

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/recipientkeys"
	"github.com/carenotify/carenotify/services/email/internal/relay"
	"github.com/carenotify/carenotify/services/email/internal/server"
	"github.com/carenotify/carenotify/services/email/internal/token"
)

// TLSRequired is the only SMTP TLS policy for now: STARTTLS with a
// certificate verified against the system roots and EMAIL_SMTP_CA_FILE.
const TLSRequired = "required"

// Config is the email service's configuration, read from EMAIL_* variables.
// Defaults live in the tags; the service README lists every variable.
type Config struct {
	// HTTPAddr serves /metrics, /healthz and /readyz.
	HTTPAddr string `env:"EMAIL_HTTP_ADDR" envDefault:":8082"`
	// GRPCAddr serves carenotify.email.v1.EmailService.
	GRPCAddr string `env:"EMAIL_GRPC_ADDR" envDefault:":9102"`

	// HTTPListener and GRPCListener, when set (by tests), are used instead of
	// listening on HTTPAddr and GRPCAddr. Not read from the environment.
	HTTPListener net.Listener
	GRPCListener net.Listener
	// PprofAddr, when set, serves net/http/pprof on its own listener (off
	// by default; bind it to loopback).
	PprofAddr string `env:"EMAIL_PPROF_ADDR"`
	// PprofListener, when set (by tests), is used instead of listening on
	// PprofAddr. Not read from the environment.
	PprofListener net.Listener
	// NATSURL is the NATS server with JetStream.
	NATSURL string `env:"EMAIL_NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	// RedisURL holds idempotency keys and delivery records.
	RedisURL string `env:"EMAIL_REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"`
	// LogLevel is debug, info, warn or error.
	LogLevel slog.Level `env:"EMAIL_LOG_LEVEL" envDefault:"info"`
	// ShutdownGrace is how long in-flight work may take after SIGTERM.
	ShutdownGrace time.Duration `env:"EMAIL_SHUTDOWN_GRACE" envDefault:"10s"`
	// StreamReplicas is the replica count of the streams the service declares.
	StreamReplicas int `env:"EMAIL_STREAM_REPLICAS" envDefault:"1"`
	// KeyringDir is the directory of key-encryption key files (see
	// pkg/envelope) that protect the data keys sealing the outbox.
	KeyringDir string `env:"EMAIL_KEYRING_DIR"`
	// AuditPseudonymKeyFile is the key that turns patient ids into keyed
	// hashes in the audit trail (see pkg/audit). Required.
	AuditPseudonymKeyFile string `env:"EMAIL_AUDIT_PSEUDONYM_KEY_FILE"`
	// AuditSigningKeyFile signs the audit trail's checkpoints; optional.
	AuditSigningKeyFile string `env:"EMAIL_AUDIT_SIGNING_KEY_FILE"`

	// Delivery is relay (every message to SMTPHost) or mx (directly to
	// the recipient domain's MX hosts).
	Delivery string `env:"EMAIL_DELIVERY" envDefault:"relay"`
	// MXPort is the MX hosts' port for direct delivery.
	MXPort int `env:"EMAIL_MX_PORT" envDefault:"25"`
	// DNSServer, when set (host:port), answers the MX, TXT and address
	// lookups of direct delivery instead of the system resolver.
	DNSServer string `env:"EMAIL_DNS_SERVER"`
	// MTASTS is on (honour recipient domains' MTA-STS policies in direct
	// delivery) or off.
	MTASTS string `env:"EMAIL_MTA_STS" envDefault:"on"`
	// SMTPHost is the relay's host name; it is also the name its
	// certificate must be valid for.
	SMTPHost string `env:"EMAIL_SMTP_HOST" envDefault:"localhost"`
	// SMTPPort is the relay's submission port.
	SMTPPort int `env:"EMAIL_SMTP_PORT" envDefault:"587"`
	// SMTPUsername turns on SMTP AUTH when set.
	SMTPUsername string `env:"EMAIL_SMTP_USERNAME"`
	// SMTPPassword is the SMTP AUTH password. Prefer SMTPPasswordFile.
	SMTPPassword Secret `env:"EMAIL_SMTP_PASSWORD"`
	// SMTPPasswordFile holds the password read from the file that
	// EMAIL_SMTP_PASSWORD_FILE names (a mounted secret).
	SMTPPasswordFile Secret `env:"EMAIL_SMTP_PASSWORD_FILE,file"`
	// SMTPCAFile names a PEM file of extra roots trusted for the relay, on
	// top of the system roots.
	SMTPCAFile string `env:"EMAIL_SMTP_CA_FILE"`
	// SMTPTLS is the transport security policy; only "required" exists.
	SMTPTLS string `env:"EMAIL_SMTP_TLS" envDefault:"required"`
	// From is the From header, e.g. "Carenotify <noreply@example.org>".
	From string `env:"EMAIL_FROM"`
	// SMTPMaxMessagesPerConnection is how many messages one SMTP session
	// with the relay carries before it is closed and a new one opened.
	SMTPMaxMessagesPerConnection int `env:"EMAIL_SMTP_MAX_MESSAGES_PER_CONNECTION" envDefault:"100"`
	// SMTPIdleTimeout closes an SMTP session with the relay that stayed
	// unused this long.
	SMTPIdleTimeout time.Duration `env:"EMAIL_SMTP_IDLE_TIMEOUT" envDefault:"30s"`
	// SMTPHeloName is the name given in EHLO; the host name when empty.
	SMTPHeloName string `env:"EMAIL_SMTP_HELO_NAME"`
	// PolicyFile names a JSON file of per-tenant transport policies (see
	// app.Policies); every tenant gets app.DefaultPolicy without it.
	PolicyFile string `env:"EMAIL_POLICY_FILE"`
	// RecipientKeysDir, when set, is a directory of recipients' S/MIME
	// certificates and OpenPGP public keys (one sub-directory per tenant)
	// put on record at start (see recipientkeys.LoadDir).
	RecipientKeysDir string `env:"EMAIL_RECIPIENT_KEYS_DIR"`
	// AdminToken is the bearer token of the admin API
	// (/admin/recipient-keys); without it the admin API refuses every call.
	AdminToken Secret `env:"EMAIL_ADMIN_TOKEN"`
	// AdminTokenFile holds the token read from the file that
	// EMAIL_ADMIN_TOKEN_FILE names (a mounted secret); use instead of
	// AdminToken.
	AdminTokenFile Secret `env:"EMAIL_ADMIN_TOKEN_FILE,file"`

	// DKIMKeyFile is a PEM private key (PKCS#8 RSA or Ed25519, or PKCS#1
	// RSA), a mounted secret; DKIM signing is off without it.
	DKIMKeyFile string `env:"EMAIL_DKIM_KEY_FILE"`
	// DKIMSelector is the DKIM selector (s=); required with a key.
	DKIMSelector string `env:"EMAIL_DKIM_SELECTOR"`
	// DKIMDomain is the signing domain (d=); the From domain when empty.
	DKIMDomain string `env:"EMAIL_DKIM_DOMAIN"`

	// UnsubscribeBaseURL, when set, gives every message one-click
	// List-Unsubscribe headers pointing at <UnsubscribeBaseURL>/u/<token>,
	// served by this service's HTTP server.
	UnsubscribeBaseURL string `env:"EMAIL_UNSUBSCRIBE_BASE_URL"`
	// UnsubscribeKeyFile holds the key (base64, 32 bytes or more) that signs
	// unsubscribe tokens; required with UnsubscribeBaseURL.
	UnsubscribeKeyFile string `env:"EMAIL_UNSUBSCRIBE_KEY_FILE"`

	// BounceDomain, when set, makes the envelope sender of every message a
	// VERP address bounces+<token>@BounceDomain.
	BounceDomain string `env:"EMAIL_BOUNCE_DOMAIN"`
	// BounceKeyFile holds the key (base64, 32 bytes or more) that signs
	// VERP tokens; required with BounceDomain.
	BounceKeyFile string `env:"EMAIL_BOUNCE_KEY_FILE"`
	// BounceSMTPAddr, when set, is where the inbound SMTP listener for
	// bounces (DSNs) and complaint reports listens; requires BounceDomain.
	BounceSMTPAddr string `env:"EMAIL_BOUNCE_SMTP_ADDR"`
	// BounceTLSCertFile and BounceTLSKeyFile, when set, make the bounce
	// listener offer STARTTLS with this certificate.
	BounceTLSCertFile string `env:"EMAIL_BOUNCE_TLS_CERT_FILE"`
	BounceTLSKeyFile  string `env:"EMAIL_BOUNCE_TLS_KEY_FILE"`
	// BounceListener, when set (by tests), is used instead of listening on
	// BounceSMTPAddr. Not read from the environment.
	BounceListener net.Listener

	// SendGridWebhookKey, when set, turns on POST /webhooks/relay/sendgrid:
	// SendGrid's signed Event Webhook verification key (base64 DER ECDSA
	// public key, as SendGrid shows it).
	SendGridWebhookKey string `env:"EMAIL_SENDGRID_WEBHOOK_KEY"`
	// DSNNotify is the RFC 3461 NOTIFY asked of a relay that offers DSN:
	// NEVER, or SUCCESS, FAILURE, DELAY joined by commas; "off" asks for
	// nothing (no RET, ENVID or NOTIFY).
	DSNNotify string `env:"EMAIL_DSN_NOTIFY" envDefault:"FAILURE,DELAY"`
	// DSNRet is RET: HDRS (headers only) or FULL (the whole message,
	// PHI included, comes back in the DSN).
	DSNRet string `env:"EMAIL_DSN_RET" envDefault:"HDRS"`
	// SuppressBounces says which permanent failures put the recipient on
	// the suppression list: address (failures about the address only),
	// permanent (every 5xx and DSN 5.x.x) or off. Complaints always do.
	SuppressBounces string `env:"EMAIL_SUPPRESS_BOUNCES" envDefault:"address"`

	// Workers is how many messages are delivered at once.
	Workers int `env:"EMAIL_WORKERS" envDefault:"4"`
	// DefaultExpiry is how long a message is tried when Send sets no expiry.
	DefaultExpiry time.Duration `env:"EMAIL_DEFAULT_EXPIRY" envDefault:"24h"`
	// MaxBodyBytes caps subject plus bodies of one message, in bytes.
	MaxBodyBytes int `env:"EMAIL_MAX_BODY_BYTES" envDefault:"2097152"`
	// SendTimeout bounds one delivery attempt, connection included.
	SendTimeout time.Duration `env:"EMAIL_SEND_TIMEOUT" envDefault:"30s"`
}

// Delivery modes (EMAIL_DELIVERY).
const (
	DeliveryRelay = "relay"
	DeliveryMX    = "mx"
)

// Resolver returns the resolver of direct delivery: one that asks only
// DNSServer, else the system's.
func (c *Config) Resolver() *net.Resolver {
	if c.DNSServer == "" {
		return net.DefaultResolver
	}
	server := c.DNSServer
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}
}

// Secret is a configuration value that must never be printed: it formats
// as "[SECRET]" through fmt, encoding/json and slog.
type Secret string

// String returns a placeholder, never the secret.
func (Secret) String() string { return "[SECRET]" }

// GoString returns a placeholder, never the secret.
func (Secret) GoString() string { return "[SECRET]" }

// MarshalText returns a placeholder, never the secret.
func (Secret) MarshalText() ([]byte, error) { return []byte("[SECRET]"), nil }

// LogValue returns a placeholder, never the secret.
func (Secret) LogValue() slog.Value { return slog.StringValue("[SECRET]") }

// Password returns the SMTP AUTH password from EMAIL_SMTP_PASSWORD or the
// file EMAIL_SMTP_PASSWORD_FILE names, without a trailing newline.
func (c *Config) Password() string {
	if c.SMTPPasswordFile != "" {
		return strings.TrimRight(string(c.SMTPPasswordFile), "\r\n")
	}
	return string(c.SMTPPassword)
}

// Admin returns the admin API's bearer token from EMAIL_ADMIN_TOKEN or the
// file EMAIL_ADMIN_TOKEN_FILE names (surrounding white space ignored); ""
// when neither is set.
func (c *Config) Admin() string {
	if c.AdminTokenFile != "" {
		return strings.TrimSpace(string(c.AdminTokenFile))
	}
	return string(c.AdminToken)
}

// FromAddress returns the parsed From header.
func (c *Config) FromAddress() (*mail.Address, error) {
	a, err := mail.ParseAddress(c.From)
	if err != nil {
		return nil, errors.New("EMAIL_FROM is not a valid address")
	}
	if _, domain, ok := strings.Cut(a.Address, "@"); !ok || domain == "" {
		return nil, errors.New("EMAIL_FROM has no domain")
	}
	return a, nil
}

// RootCAs returns the system roots plus the certificates in SMTPCAFile,
// the pool the relay's certificate is verified against.
func (c *Config) RootCAs() (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if c.SMTPCAFile == "" {
		return pool, nil
	}
	pem, err := os.ReadFile(c.SMTPCAFile)
	if err != nil {
		return nil, fmt.Errorf("EMAIL_SMTP_CA_FILE: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("EMAIL_SMTP_CA_FILE %s holds no PEM certificate", c.SMTPCAFile)
	}
	return pool, nil
}

// Policies returns the tenants' transport policies from PolicyFile:
// {"default": {...}, "tenants": {"<tenant>": {...}}}, each policy's
// missing fields taken from app.DefaultPolicy (a tenant's from the file's
// default). Unknown fields are an error.
func (c *Config) Policies() (app.Policies, error) {
	ps := app.DefaultPolicies()
	if c.PolicyFile == "" {
		return ps, nil
	}
	raw, err := os.ReadFile(c.PolicyFile)
	if err != nil {
		return ps, fmt.Errorf("EMAIL_POLICY_FILE: %w", err)
	}
	var file struct {
		Default json.RawMessage            `json:"default"`
		Tenants map[string]json.RawMessage `json:"tenants"`
	}
	decode := func(b []byte, v any) error {
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		return d.Decode(v)
	}
	if err := decode(raw, &file); err != nil {
		return ps, fmt.Errorf("EMAIL_POLICY_FILE: %w", err)
	}
	if len(file.Default) > 0 {
		if err := decode(file.Default, &ps.Default); err != nil {
			return ps, fmt.Errorf("EMAIL_POLICY_FILE: default: %w", err)
		}
	}
	for t, b := range file.Tenants {
		p := ps.Default
		p.Unsubscribe = slices.Clone(p.Unsubscribe)
		p.Limits = maps.Clone(p.Limits)
		if err := decode(b, &p); err != nil {
			return ps, fmt.Errorf("EMAIL_POLICY_FILE: tenants.%s: %w", t, err)
		}
		if ps.Tenants == nil {
			ps.Tenants = map[string]app.Policy{}
		}
		ps.Tenants[t] = p
	}
	if err := ps.Validate(); err != nil {
		return ps, fmt.Errorf("EMAIL_POLICY_FILE: %w", err)
	}
	return ps, nil
}

// DSNNotifyList returns EMAIL_DSN_NOTIFY as a list, nil for "off".
func (c *Config) DSNNotifyList() []string {
	if c.DSNNotify == "off" {
		return nil
	}
	vs := strings.Split(c.DSNNotify, ",")
	for i := range vs {
		vs[i] = strings.ToUpper(strings.TrimSpace(vs[i]))
	}
	return vs
}

// HeloName returns the EHLO name: SMTPHeloName, else the host name.
func (c *Config) HeloName() string {
	if c.SMTPHeloName != "" {
		return c.SMTPHeloName
	}
	if h, err := os.Hostname(); err == nil && h != "" && !strings.ContainsAny(h, " \r\n") {
		return h
	}
	return "localhost"
}

// Validate checks the configuration. It reads EMAIL_SMTP_CA_FILE, so that
// -check-config catches a missing or broken file.
func (c *Config) Validate() error {
	var errs []error
	required := []struct{ name, value string }{
		{"EMAIL_HTTP_ADDR", c.HTTPAddr}, {"EMAIL_GRPC_ADDR", c.GRPCAddr},
		{"EMAIL_NATS_URL", c.NATSURL}, {"EMAIL_REDIS_URL", c.RedisURL},
		{"EMAIL_SMTP_HOST", c.SMTPHost}, {"EMAIL_FROM", c.From},
	}
	for _, r := range required {
		if r.value == "" {
			errs = append(errs, fmt.Errorf("%s is required", r.name))
		}
	}
	switch c.Delivery {
	case DeliveryRelay, DeliveryMX:
	default:
		errs = append(errs, errors.New(`EMAIL_DELIVERY must be "relay" or "mx"`))
	}
	if c.MXPort < 1 || c.MXPort > 65535 {
		errs = append(errs, errors.New("EMAIL_MX_PORT must be 1-65535"))
	}
	if c.DNSServer != "" {
		if _, _, err := net.SplitHostPort(c.DNSServer); err != nil {
			errs = append(errs, fmt.Errorf("EMAIL_DNS_SERVER: %w", err))
		}
	}
	if c.MTASTS != "on" && c.MTASTS != "off" {
		errs = append(errs, errors.New(`EMAIL_MTA_STS must be "on" or "off"`))
	}
	if c.PprofAddr != "" {
		if _, _, err := net.SplitHostPort(c.PprofAddr); err != nil {
			errs = append(errs, fmt.Errorf("EMAIL_PPROF_ADDR: %w", err))
		}
	}
	if c.AuditPseudonymKeyFile == "" {
		errs = append(errs, errors.New("EMAIL_AUDIT_PSEUDONYM_KEY_FILE is required: every delivery outcome is audited"))
	}
	if c.KeyringDir == "" {
		errs = append(errs, errors.New("EMAIL_KEYRING_DIR is required: PHI is only stored encrypted"))
	}
	if c.From != "" {
		if _, err := c.FromAddress(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.SMTPTLS != TLSRequired {
		errs = append(errs, fmt.Errorf("EMAIL_SMTP_TLS must be %q (got %q): PHI never crosses an unverified connection, so STARTTLS with a verified certificate is the only policy", TLSRequired, c.SMTPTLS))
	}
	if c.SMTPPort < 1 || c.SMTPPort > 65535 {
		errs = append(errs, errors.New("EMAIL_SMTP_PORT must be 1-65535"))
	}
	if c.SMTPPassword != "" && c.SMTPPasswordFile != "" {
		errs = append(errs, errors.New("set EMAIL_SMTP_PASSWORD or EMAIL_SMTP_PASSWORD_FILE, not both"))
	}
	if (c.SMTPUsername == "") != (c.Password() == "") {
		errs = append(errs, errors.New("EMAIL_SMTP_USERNAME and a password go together"))
	}
	if _, err := c.RootCAs(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.Policies(); err != nil {
		errs = append(errs, err)
	}
	if c.RecipientKeysDir != "" {
		if fi, err := os.Stat(c.RecipientKeysDir); err != nil || !fi.IsDir() {
			errs = append(errs, errors.New("EMAIL_RECIPIENT_KEYS_DIR must be a directory"))
		} else if _, err := recipientkeys.CheckDir(c.RecipientKeysDir, time.Now()); err != nil {
			errs = append(errs, fmt.Errorf("EMAIL_RECIPIENT_KEYS_DIR: %w", err))
		}
	}
	if c.SendGridWebhookKey != "" {
		if _, err := server.ParseSendGridKey(c.SendGridWebhookKey); err != nil {
			errs = append(errs, fmt.Errorf("EMAIL_SENDGRID_WEBHOOK_KEY: %w", err))
		}
	}
	if c.DSNNotify != "off" && !relay.ValidDSNNotify(c.DSNNotifyList()) {
		errs = append(errs, errors.New("EMAIL_DSN_NOTIFY must be off, NEVER, or SUCCESS, FAILURE, DELAY joined by commas"))
	}
	if c.DSNRet != "HDRS" && c.DSNRet != "FULL" {
		errs = append(errs, errors.New("EMAIL_DSN_RET must be HDRS or FULL"))
	}
	switch c.SuppressBounces {
	case app.SuppressAddress, app.SuppressPermanent, app.SuppressOff:
	default:
		errs = append(errs, errors.New("EMAIL_SUPPRESS_BOUNCES must be address, permanent or off"))
	}
	if c.AdminToken != "" && c.AdminTokenFile != "" {
		errs = append(errs, errors.New("set EMAIL_ADMIN_TOKEN or EMAIL_ADMIN_TOKEN_FILE, not both"))
	}
	if t := c.Admin(); t != "" && len(t) < 16 {
		errs = append(errs, errors.New("EMAIL_ADMIN_TOKEN must be at least 16 characters"))
	}
	if strings.ContainsAny(c.SMTPHeloName, " \r\n<>") {
		errs = append(errs, errors.New("EMAIL_SMTP_HELO_NAME must be a host name"))
	}
	positive := []struct {
		name string
		ok   bool
	}{
		{"EMAIL_SHUTDOWN_GRACE", c.ShutdownGrace > 0},
		{"EMAIL_STREAM_REPLICAS", c.StreamReplicas > 0},
		{"EMAIL_WORKERS", c.Workers > 0},
		{"EMAIL_DEFAULT_EXPIRY", c.DefaultExpiry > 0},
		{"EMAIL_MAX_BODY_BYTES", c.MaxBodyBytes > 0},
		{"EMAIL_SEND_TIMEOUT", c.SendTimeout > 0},
		{"EMAIL_SMTP_MAX_MESSAGES_PER_CONNECTION", c.SMTPMaxMessagesPerConnection > 0},
		{"EMAIL_SMTP_IDLE_TIMEOUT", c.SMTPIdleTimeout > 0},
	}
	for _, p := range positive {
		if !p.ok {
			errs = append(errs, fmt.Errorf("%s must be positive", p.name))
		}
	}
	errs = append(errs, c.validateDKIM(), c.validateUnsubscribe(), c.validateBounces())
	return errors.Join(errs...)
}

// DKIMDomainOrFrom returns the DKIM signing domain: DKIMDomain, or the
// From address's domain.
func (c *Config) DKIMDomainOrFrom() string {
	if c.DKIMDomain != "" {
		return c.DKIMDomain
	}
	a, err := c.FromAddress()
	if err != nil {
		return ""
	}
	_, domain, _ := strings.Cut(a.Address, "@")
	return domain
}

func (c *Config) validateDKIM() error {
	if c.DKIMKeyFile == "" {
		if c.DKIMSelector != "" || c.DKIMDomain != "" {
			return errors.New("EMAIL_DKIM_SELECTOR and EMAIL_DKIM_DOMAIN need EMAIL_DKIM_KEY_FILE")
		}
		return nil
	}
	var errs []error
	if c.DKIMSelector == "" || strings.ContainsAny(c.DKIMSelector, " ;=@") {
		errs = append(errs, errors.New("EMAIL_DKIM_SELECTOR is required with EMAIL_DKIM_KEY_FILE (a DNS label such as 2026a)"))
	}
	key, err := relay.LoadDKIMKey(c.DKIMKeyFile)
	if err == nil {
		_, err = relay.NewDKIM(c.DKIMDomainOrFrom(), "selector", key)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("EMAIL_DKIM_KEY_FILE: %w", err))
	}
	return errors.Join(errs...)
}

func (c *Config) validateUnsubscribe() error {
	if c.UnsubscribeBaseURL == "" {
		return nil
	}
	var errs []error
	u, err := url.Parse(c.UnsubscribeBaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, errors.New("EMAIL_UNSUBSCRIBE_BASE_URL must be an absolute http(s) URL without query or fragment"))
	}
	if c.UnsubscribeKeyFile == "" {
		errs = append(errs, errors.New("EMAIL_UNSUBSCRIBE_KEY_FILE is required with EMAIL_UNSUBSCRIBE_BASE_URL"))
	} else if _, err := token.Load(c.UnsubscribeKeyFile); err != nil {
		errs = append(errs, fmt.Errorf("EMAIL_UNSUBSCRIBE_KEY_FILE: %w", err))
	}
	return errors.Join(errs...)
}

func (c *Config) validateBounces() error {
	var errs []error
	if c.BounceDomain == "" {
		if c.BounceSMTPAddr != "" {
			errs = append(errs, errors.New("EMAIL_BOUNCE_SMTP_ADDR needs EMAIL_BOUNCE_DOMAIN"))
		}
		return errors.Join(errs...)
	}
	if strings.ContainsAny(c.BounceDomain, "@ <>") || !strings.Contains(c.BounceDomain, ".") && c.BounceDomain != "localhost" {
		errs = append(errs, errors.New("EMAIL_BOUNCE_DOMAIN must be a domain name"))
	}
	if c.BounceKeyFile == "" {
		errs = append(errs, errors.New("EMAIL_BOUNCE_KEY_FILE is required with EMAIL_BOUNCE_DOMAIN"))
	} else if _, err := token.Load(c.BounceKeyFile); err != nil {
		errs = append(errs, fmt.Errorf("EMAIL_BOUNCE_KEY_FILE: %w", err))
	}
	if (c.BounceTLSCertFile == "") != (c.BounceTLSKeyFile == "") {
		errs = append(errs, errors.New("EMAIL_BOUNCE_TLS_CERT_FILE and EMAIL_BOUNCE_TLS_KEY_FILE go together"))
	} else if c.BounceTLSCertFile != "" {
		if _, err := tls.LoadX509KeyPair(c.BounceTLSCertFile, c.BounceTLSKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("EMAIL_BOUNCE_TLS_CERT_FILE: %w", err))
		}
	}
	return errors.Join(errs...)
}
