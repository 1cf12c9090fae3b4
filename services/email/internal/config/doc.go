// Package config holds the email service's configuration: one [Config]
// read from EMAIL_* environment variables, with every default in its struct
// tags and every check in [Config.Validate]. The service README lists each
// variable.
package config
