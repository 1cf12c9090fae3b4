// Package config holds the ingest service's configuration: one Config
// struct read from INGEST_* environment variables (defaults in its tags,
// each variable listed in the service README) and the sources allowed to
// post notifications, with their bearer tokens.
//
// Tokens are secrets: a [Token] prints, logs and marshals as "[REDACTED]",
// and no error message built here repeats a configuration entry.
package config
