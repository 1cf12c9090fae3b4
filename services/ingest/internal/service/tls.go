package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
	"github.com/carenotify/carenotify/services/ingest/internal/ratelimit"
)

// clientCAs reads INGEST_TLS_CLIENT_CA_FILE; nil when it is not set.
func clientCAs(cfg *config.Config) (*x509.CertPool, error) {
	if cfg.TLSClientCAFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(cfg.TLSClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("INGEST_TLS_CLIENT_CA_FILE: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("INGEST_TLS_CLIENT_CA_FILE: no PEM certificate in the file")
	}
	return pool, nil
}

// httpTLS returns the HTTP listener's TLS config, nil without
// INGEST_TLS_CERT_FILE. A client certificate is asked for and verified
// when the CA is set, but not required: bearer and HMAC sources connect
// without one; mtls sources are refused without one by the server.
func httpTLS(cfg *config.Config, cas *x509.CertPool) (*tls.Config, error) {
	if cfg.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("INGEST_TLS_CERT_FILE/INGEST_TLS_KEY_FILE: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if cas != nil {
		c.ClientCAs, c.ClientAuth = cas, tls.VerifyClientCertIfGiven
	}
	return c, nil
}

// mllpIdentify returns the function that names an MLLP connection's source
// from its client certificate, nil when MLLP does not map certificates
// (no client CA, no TLS, or no mtls source).
func mllpIdentify(cfg *config.Config, cas *x509.CertPool) func(*x509.Certificate) (app.Source, bool) {
	if cas == nil || cfg.MLLPTLSCertFile == "" || !cfg.HasMTLSSources() {
		return nil
	}
	var mtls config.Sources
	for _, s := range cfg.AllSources() {
		if s.Method() == config.AuthMTLS {
			mtls = append(mtls, s)
		}
	}
	return func(c *x509.Certificate) (app.Source, bool) {
		for _, s := range mtls {
			if s.MTLS.Matches(c) {
				return app.Source{Name: s.Name, Tenant: s.Tenant}, true
			}
		}
		return app.Source{}, false
	}
}

// mllpThrottle returns the MLLP rate limit: each message (a batch is one)
// takes a unit of its source's budget, the same budget as its HTTP
// requests. nil when no source has a rate.
func mllpThrottle(cfg *config.Config, l *ratelimit.Limiter) func(context.Context, app.Source) (bool, time.Duration, error) {
	limits := map[string]config.Limits{}
	for _, s := range cfg.AllSources() {
		if s.Limits.Rate > 0 {
			limits[s.Name] = s.Limits
		}
	}
	if len(limits) == 0 {
		return nil
	}
	return func(ctx context.Context, src app.Source) (bool, time.Duration, error) {
		return l.Allow(ctx, src.Tenant, src.Name, limits[src.Name])
	}
}

// mllpMaxMessageBytes returns each source's max_body_bytes for MLLP
// frames; nil when no source has one.
func mllpMaxMessageBytes(cfg *config.Config) func(app.Source) int64 {
	limits := map[string]int64{}
	for _, s := range cfg.AllSources() {
		if s.Limits.MaxBodyBytes > 0 {
			limits[s.Name] = s.Limits.MaxBodyBytes
		}
	}
	if len(limits) == 0 {
		return nil
	}
	return func(src app.Source) int64 { return limits[src.Name] }
}
