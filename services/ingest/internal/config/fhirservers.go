package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/carenotify/carenotify/pkg/bus"
)

// FHIRServer is one source's FHIR API: where id-only notifications are
// fetched from and how ingest authenticates there (SMART Backend Services,
// https://hl7.org/fhir/smart-app-launch/backend-services.html). It holds
// no secret itself: the private key stays in its file.
type FHIRServer struct {
	// Source is the configured source (INGEST_SOURCES) this server belongs to.
	Source string `json:"source"`
	// BaseURL is the FHIR base URL; resources are fetched below it only.
	BaseURL string `json:"base_url"`
	// TokenURL is the OAuth 2.0 token endpoint.
	TokenURL string `json:"token_url"`
	// ClientID is the registered client id (iss and sub of the assertion).
	ClientID string `json:"client_id"`
	// PrivateKeyFile is a PEM RSA or EC P-384 private key.
	PrivateKeyFile string `json:"private_key_file"`
	// KeyID is the JWS "kid" header, optional.
	KeyID string `json:"kid,omitempty"`
	// Alg is RS384 or ES384.
	Alg string `json:"alg"`
	// Scope is the requested scope, e.g. "system/Appointment.rs".
	Scope string `json:"scope"`
	// AllowPrivateAddresses lets the client connect to loopback, private
	// and link-local addresses (an EHR on the hospital network, tests).
	AllowPrivateAddresses bool `json:"allow_private_addresses"`
	// TopicTypes maps subscription topic canonical URLs to the resource
	// type they notify about, for focus-by-identifier (athenahealth) and
	// empty payloads.
	TopicTypes map[string]string `json:"topic_types,omitempty"`
	// HeartbeatPeriod is the subscription's heartbeat period (Go duration);
	// 10m when empty.
	HeartbeatPeriod string `json:"heartbeat_period,omitempty"`
}

// Heartbeat returns the heartbeat period, 10 minutes by default.
func (s FHIRServer) Heartbeat() time.Duration {
	d, err := time.ParseDuration(s.HeartbeatPeriod)
	if err != nil || d <= 0 {
		return 10 * time.Minute
	}
	return d
}

// LoadFHIRServers reads the INGEST_FHIR_SERVERS_FILE file: a JSON list of
// FHIRServer objects (JSON is also YAML, so a YAML file written in flow
// style works; block-style YAML is not read). Every entry's source must be
// one of sources. Errors name entry positions and fields, never values.
func LoadFHIRServers(path string, sources Sources) ([]FHIRServer, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("INGEST_FHIR_SERVERS_FILE: %w", err)
	}
	var list []FHIRServer
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, errors.New("INGEST_FHIR_SERVERS_FILE: want a JSON list of objects")
	}
	known := map[string]bool{}
	for _, s := range sources {
		known[s.Name] = true
	}
	seen := map[string]bool{}
	var errs []error
	for i, s := range list {
		n := i + 1
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("INGEST_FHIR_SERVERS_FILE entry %d: "+format, append([]any{n}, args...)...))
		}
		switch {
		case !bus.ValidToken(s.Source):
			bad("source must be 1-64 letters, digits, '_' or '-'")
		case !known[s.Source]:
			bad("source is not a configured source")
		case seen[s.Source]:
			bad("source repeats an earlier entry")
		}
		seen[s.Source] = true
		if !validHTTPURL(s.BaseURL) {
			bad("base_url must be an absolute http(s) URL without query or fragment")
		}
		if !validHTTPURL(s.TokenURL) {
			bad("token_url must be an absolute http(s) URL without query or fragment")
		}
		if s.ClientID == "" {
			bad("client_id is required")
		}
		if s.PrivateKeyFile == "" {
			bad("private_key_file is required")
		}
		if s.Alg != "RS384" && s.Alg != "ES384" {
			bad("alg must be RS384 or ES384")
		}
		if s.HeartbeatPeriod != "" {
			if d, err := time.ParseDuration(s.HeartbeatPeriod); err != nil || d <= 0 {
				bad("heartbeat_period must be a positive Go duration")
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return list, nil
}

func validHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		u.RawQuery == "" && u.Fragment == "" && u.User == nil
}
