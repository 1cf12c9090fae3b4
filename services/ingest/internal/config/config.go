package config

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"
)

// Config is the ingest service's configuration, read from INGEST_*
// variables. Defaults live in the tags; the service README lists every
// variable.
type Config struct {
	// HTTPAddr serves the FHIR notification endpoint and /metrics, /healthz
	// and /readyz.
	HTTPAddr string `env:"INGEST_HTTP_ADDR" envDefault:":8080"`

	// HTTPListener, when set (by tests), is used instead of listening on
	// HTTPAddr. Not read from the environment.
	HTTPListener net.Listener
	// NATSURL is the NATS server with JetStream.
	NATSURL string `env:"INGEST_NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	// RedisURL is the Redis that keeps ingest's fast, rebuildable state
	// (redis://[:password@]host:port/db, rediss:// for TLS). Required.
	RedisURL string `env:"INGEST_REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"`
	// LogLevel is debug, info, warn or error.
	LogLevel slog.Level `env:"INGEST_LOG_LEVEL" envDefault:"info"`
	// ShutdownGrace is how long in-flight requests may take after SIGTERM.
	ShutdownGrace time.Duration `env:"INGEST_SHUTDOWN_GRACE" envDefault:"10s"`
	// StreamReplicas is the replica count of the EHR_EVENTS and EHR_DEAD
	// streams ingest declares at start.
	StreamReplicas int `env:"INGEST_STREAM_REPLICAS" envDefault:"1"`
	// MaxBodyBytes is the largest notification body accepted (413 above).
	MaxBodyBytes int64 `env:"INGEST_MAX_BODY_BYTES" envDefault:"10485760"`
	// PublishTimeout bounds each JetStream publish (and wait for its ack).
	PublishTimeout time.Duration `env:"INGEST_PUBLISH_TIMEOUT" envDefault:"5s"`
	// Sources are the senders allowed to post, as name=tenant:token
	// entries separated by commas (token: sha256:<hex> of the token, or,
	// deprecated, the plain token).
	Sources Sources `env:"INGEST_SOURCES"`
	// KeyringDir is the directory of key-encryption key files that protect
	// PHI at rest (see pkg/envelope). Required.
	KeyringDir string `env:"INGEST_KEYRING_DIR"`
	// AuditPseudonymKeyFile is the key that turns patient ids into keyed
	// hashes in the audit trail (see pkg/audit). Required.
	AuditPseudonymKeyFile string `env:"INGEST_AUDIT_PSEUDONYM_KEY_FILE"`
	// AuditSigningKeyFile signs the audit trail's checkpoints; without it
	// no checkpoints are written.
	AuditSigningKeyFile string `env:"INGEST_AUDIT_SIGNING_KEY_FILE"`
	// SourcesFile names the sources file: YAML with per-tenant sources
	// (see LoadSourcesFile), or the legacy name=tenant:token lines. Set it
	// or Sources, not both.
	SourcesFile string `env:"INGEST_SOURCES_FILE"`
	// FileSources are the sources read from SourcesFile by Validate. Not
	// read from the environment.
	FileSources Sources `env:"-"`
	// Warnings are configuration problems that do not stop the service
	// (plain tokens), found by Validate; logged at start and printed by
	// -check-config. Not read from the environment.
	Warnings []string `env:"-"`
	// FHIRServersFile names a JSON file listing each source's FHIR API
	// (base URL, SMART Backend Services client); id-only notifications of
	// sources without one are kept on EHR_DEAD. See FHIRServer.
	FHIRServersFile string `env:"INGEST_FHIR_SERVERS_FILE"`
	// HeartbeatCheckInterval is how often subscriptions are checked for
	// overdue heartbeats.
	HeartbeatCheckInterval time.Duration `env:"INGEST_HEARTBEAT_CHECK_INTERVAL" envDefault:"1m"`
	// AdminToken, when set, may read GET /status/subscriptions for every
	// source.
	AdminToken Token `env:"INGEST_ADMIN_TOKEN"`

	// TLSCertFile and TLSKeyFile, both set, make the HTTP listener speak
	// TLS (1.2+).
	TLSCertFile string `env:"INGEST_TLS_CERT_FILE"`
	TLSKeyFile  string `env:"INGEST_TLS_KEY_FILE"`
	// TLSClientCAFile is the PEM CA bundle client certificates are
	// verified against (HTTP: asked for, required for mtls sources; MLLP
	// over TLS: required, and the certificate names the source).
	TLSClientCAFile string `env:"INGEST_TLS_CLIENT_CA_FILE"`

	// MLLPAddr is the HL7 v2 MLLP listen address; "off" disables the
	// listener (an empty value means the default, as for every variable).
	MLLPAddr string `env:"INGEST_MLLP_ADDR" envDefault:":2575"`
	// MLLPListener, when set (by tests), is used instead of listening on
	// MLLPAddr. Not read from the environment.
	MLLPListener net.Listener
	// MLLPSource is the source (name=tenant) of every HL7 message; the
	// listener runs only when it is set.
	MLLPSource MLLPSource `env:"INGEST_MLLP_SOURCE"`
	// MLLPTLSCertFile and MLLPTLSKeyFile, both set, make the listener
	// speak TLS.
	MLLPTLSCertFile string `env:"INGEST_MLLP_TLS_CERT_FILE"`
	MLLPTLSKeyFile  string `env:"INGEST_MLLP_TLS_KEY_FILE"`
	// MLLPReadTimeout closes a connection idle for this long.
	MLLPReadTimeout time.Duration `env:"INGEST_MLLP_READ_TIMEOUT" envDefault:"60s"`
	// MLLPMaxFrameBytes is the largest MLLP frame accepted.
	MLLPMaxFrameBytes int `env:"INGEST_MLLP_MAX_FRAME_BYTES" envDefault:"4194304"`
	// MLLPMaxConns bounds concurrent MLLP connections.
	MLLPMaxConns int `env:"INGEST_MLLP_MAX_CONNS" envDefault:"64"`
	// MLLPTimeZone is the IANA zone of HL7 times sent without an offset.
	MLLPTimeZone string `env:"INGEST_MLLP_TIME_ZONE" envDefault:"UTC"`
	// MLLPAckTTL is how long the first acknowledgement of each HL7
	// message is kept (Redis, sealed) to answer resends of the same
	// MSH-3/MSH-4/MSH-10 with it.
	MLLPAckTTL time.Duration `env:"INGEST_MLLP_ACK_TTL" envDefault:"168h"`
	// MLLPAckLockTTL is how long a message being processed blocks its
	// resends when the replica processing it dies.
	MLLPAckLockTTL time.Duration `env:"INGEST_MLLP_ACK_LOCK_TTL" envDefault:"30s"`
	// MLLPAckLockWait is how long a resend waits for the first copy's
	// acknowledgement before it is answered AE 207 (retry later).
	MLLPAckLockWait time.Duration `env:"INGEST_MLLP_ACK_LOCK_WAIT" envDefault:"10s"`

	// StateConfig holds the INGEST_STATE_* variables of the last-seen
	// resource state.
	StateConfig
}

// AllSources returns the configured sources, from INGEST_SOURCES or
// INGEST_SOURCES_FILE, whichever is set.
func (c *Config) AllSources() Sources {
	if len(c.Sources) > 0 {
		return c.Sources
	}
	return c.FileSources
}

// Validate checks the configuration and reads INGEST_SOURCES_FILE. Its
// errors name variables, files, entry positions and source ids, never a
// configured secret.
func (c *Config) Validate() error {
	var errs []error
	c.FileSources, c.Warnings = nil, nil
	if c.SourcesFile != "" {
		s, warn, err := LoadSourcesFile(c.SourcesFile)
		if err != nil {
			errs = append(errs, err)
		}
		c.FileSources, c.Warnings = s, warn
	}
	c.Warnings = append(c.Warnings, plainTokenWarnings("INGEST_SOURCES", c.Sources)...)
	if c.HTTPAddr == "" {
		errs = append(errs, errors.New("INGEST_HTTP_ADDR is required"))
	}
	if c.NATSURL == "" {
		errs = append(errs, errors.New("INGEST_NATS_URL is required"))
	}
	switch {
	case c.RedisURL == "":
		errs = append(errs, errors.New("INGEST_REDIS_URL is required"))
	case !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://"):
		// The URL may hold a password: don't echo it.
		errs = append(errs, errors.New("INGEST_REDIS_URL must be a redis:// or rediss:// URL"))
	}
	if c.ShutdownGrace <= 0 {
		errs = append(errs, errors.New("INGEST_SHUTDOWN_GRACE must be positive"))
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		errs = append(errs, errors.New("INGEST_STREAM_REPLICAS must be between 1 and 5"))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New("INGEST_MAX_BODY_BYTES must be positive"))
	}
	if c.PublishTimeout <= 0 {
		errs = append(errs, errors.New("INGEST_PUBLISH_TIMEOUT must be positive"))
	}
	switch {
	case len(c.Sources) > 0 && c.SourcesFile != "":
		errs = append(errs, errors.New("set INGEST_SOURCES or INGEST_SOURCES_FILE, not both"))
	case len(c.Sources) == 0 && c.SourcesFile == "":
		errs = append(errs, errors.New("INGEST_SOURCES or INGEST_SOURCES_FILE must name at least one source"))
	}
	if c.AuditPseudonymKeyFile == "" {
		errs = append(errs, errors.New("INGEST_AUDIT_PSEUDONYM_KEY_FILE is required: every stored event is audited"))
	}
	if c.KeyringDir == "" {
		errs = append(errs, errors.New("INGEST_KEYRING_DIR is required: PHI is only stored encrypted"))
	}
	if c.HeartbeatCheckInterval <= 0 {
		errs = append(errs, errors.New("INGEST_HEARTBEAT_CHECK_INTERVAL must be positive"))
	}
	if _, err := LoadFHIRServers(c.FHIRServersFile, c.AllSources()); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validateMLLP()...)
	errs = append(errs, c.validateTLS()...)
	errs = append(errs, c.validateState()...)
	return errors.Join(errs...)
}
