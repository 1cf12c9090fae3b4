package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/carenotify/carenotify/pkg/bus"
)

// MLLPSource is the sender of every HL7 v2 message received over MLLP,
// written name=tenant. MLLP carries no credentials, so there is exactly
// one; telling senders apart by mTLS client certificate is future work.
type MLLPSource struct {
	// Name is the source name (Cn-Source, dead-letter subject, metrics).
	Name string
	// Tenant is the tenant its events belong to.
	Tenant string
}

// UnmarshalText parses name=tenant.
func (s *MLLPSource) UnmarshalText(text []byte) error {
	name, tenant, ok := strings.Cut(strings.TrimSpace(string(text)), "=")
	if !ok {
		return errors.New("want name=tenant")
	}
	name, tenant = strings.TrimSpace(name), strings.TrimSpace(tenant)
	if !bus.ValidToken(name) || !bus.ValidToken(tenant) {
		return errors.New("name and tenant must be 1-64 letters, digits, '_' or '-'")
	}
	*s = MLLPSource{Name: name, Tenant: tenant}
	return nil
}

// MLLPEnabled reports whether the MLLP listener runs: it needs an address
// other than "off" and a source: INGEST_MLLP_SOURCE, or mtls sources named
// by client certificates over TLS (INGEST_MLLP_TLS_* and
// INGEST_TLS_CLIENT_CA_FILE).
func (c *Config) MLLPEnabled() bool {
	if c.MLLPAddr == "" || c.MLLPAddr == "off" {
		return false
	}
	return c.MLLPSource.Name != "" || c.MLLPByCertificate()
}

// MLLPByCertificate reports whether MLLP connections are told apart by
// client certificate (then INGEST_MLLP_SOURCE is not used).
func (c *Config) MLLPByCertificate() bool {
	return c.MLLPTLSCertFile != "" && c.TLSClientCAFile != "" && c.HasMTLSSources()
}

// MLLPLocation returns the time zone of HL7 times sent without an offset.
func (c *Config) MLLPLocation() (*time.Location, error) {
	loc, err := time.LoadLocation(c.MLLPTimeZone)
	if err != nil {
		return nil, fmt.Errorf("INGEST_MLLP_TIME_ZONE: %w", err)
	}
	return loc, nil
}

// validateMLLP checks the INGEST_MLLP_* variables.
func (c *Config) validateMLLP() []error {
	var errs []error
	if (c.MLLPTLSCertFile == "") != (c.MLLPTLSKeyFile == "") {
		errs = append(errs, errors.New("set both INGEST_MLLP_TLS_CERT_FILE and INGEST_MLLP_TLS_KEY_FILE, or neither"))
	}
	if c.MLLPReadTimeout <= 0 {
		errs = append(errs, errors.New("INGEST_MLLP_READ_TIMEOUT must be positive"))
	}
	if c.MLLPMaxFrameBytes <= 0 {
		errs = append(errs, errors.New("INGEST_MLLP_MAX_FRAME_BYTES must be positive"))
	}
	if c.MLLPMaxConns <= 0 {
		errs = append(errs, errors.New("INGEST_MLLP_MAX_CONNS must be positive"))
	}
	if c.MLLPAckTTL < time.Minute {
		errs = append(errs, errors.New("INGEST_MLLP_ACK_TTL must be at least 1m"))
	}
	if c.MLLPAckLockTTL <= c.StateLockWait+c.PublishTimeout {
		errs = append(errs, errors.New("INGEST_MLLP_ACK_LOCK_TTL must be longer than INGEST_STATE_LOCK_WAIT plus INGEST_PUBLISH_TIMEOUT"))
	}
	if c.MLLPAckLockWait <= 0 {
		errs = append(errs, errors.New("INGEST_MLLP_ACK_LOCK_WAIT must be positive"))
	}
	if _, err := c.MLLPLocation(); err != nil {
		errs = append(errs, errors.New("INGEST_MLLP_TIME_ZONE must be an IANA time zone name such as UTC or America/Chicago"))
	}
	return errs
}
