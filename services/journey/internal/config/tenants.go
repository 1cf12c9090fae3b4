package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// Tenant is what one tenant sets differently from the deployment's
// defaults, in JOURNEY_TENANTS_FILE. Empty fields take the defaults.
type Tenant struct {
	// Language is the BCP-47 tag messages fall back to for this tenant's
	// patients (JOURNEY_LANGUAGE otherwise).
	Language string `yaml:"language"`
	// TimeZone is the IANA time zone of this tenant's patients whose own
	// zone is unknown: quiet hours are kept and times shown in it
	// (JOURNEY_TIMEZONE otherwise).
	TimeZone string `yaml:"timezone"`
}

var tenantNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Tenants reads JOURNEY_TENANTS_FILE: a map from tenant name to its
// [Tenant] settings, languages in canonical form. No file configured is
// no tenant settings. Errors name the file, the tenant and the field.
func (c *Config) Tenants() (map[string]Tenant, error) {
	if c.TenantsFile == "" {
		return map[string]Tenant{}, nil
	}
	b, err := os.ReadFile(c.TenantsFile)
	if err != nil {
		return nil, fmt.Errorf("JOURNEY_TENANTS_FILE: %w", err)
	}
	return parseTenants(c.TenantsFile, b)
}

func parseTenants(file string, b []byte) (map[string]Tenant, error) {
	raw := map[string]Tenant{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("JOURNEY_TENANTS_FILE %s: %v (want tenant names, each with its language and timezone)", file, err)
	}
	names := make([]string, 0, len(raw))
	for n := range raw {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	out := make(map[string]Tenant, len(raw))
	for _, n := range names {
		t := raw[n]
		if !tenantNameRE.MatchString(n) {
			errs = append(errs, fmt.Errorf("JOURNEY_TENANTS_FILE %s: tenant %q may only use letters, digits, '_' and '-'", file, n))
			continue
		}
		if t.Language != "" {
			l, err := catalog.CanonicalLanguage(t.Language)
			if err != nil {
				errs = append(errs, fmt.Errorf("JOURNEY_TENANTS_FILE %s: tenant %s: language: %w", file, n, err))
			}
			t.Language = l
		}
		if t.TimeZone != "" {
			if _, err := time.LoadLocation(t.TimeZone); err != nil || t.TimeZone == "Local" {
				errs = append(errs, fmt.Errorf("JOURNEY_TENANTS_FILE %s: tenant %s: timezone %q is not a known time zone (want an IANA name such as UTC or America/Chicago)", file, n, t.TimeZone))
			}
		}
		out[n] = t
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
