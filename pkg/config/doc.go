// Package config loads a service's configuration from environment variables.
//
// Each service has one Config struct whose fields carry `env` tags with the
// service prefix (INGEST_HTTP_ADDR) and an `envDefault`, so every default is
// in one place and every variable has a line in the service README. Secrets
// may be read from mounted files with the `,file` tag option
// (github.com/caarlos0/env). A Config that has a Validate method is validated
// after loading; `-check-config` loads, validates and exits.
package config
