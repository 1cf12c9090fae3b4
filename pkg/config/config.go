package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Validator is implemented by configs that check themselves after loading.
type Validator interface {
	Validate() error
}

// Load parses environ (as from os.Environ) into a new T and validates it
// when T implements Validator.
func Load[T any](environ []string) (*T, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			vars[k] = v
		}
	}
	cfg := new(T)
	if err := env.ParseWithOptions(cfg, env.Options{Environment: vars}); err != nil {
		return nil, fmt.Errorf("parse environment: %w", err)
	}
	if v, ok := any(cfg).(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("invalid config: %w", err)
		}
	}
	return cfg, nil
}

// Flags are the command-line flags every service accepts.
type Flags struct {
	// CheckConfig asks the service to validate its configuration and exit.
	CheckConfig bool
}

// ParseFlags parses the common service flags from args (without the program
// name). Each extra function may add a service's own flags to the set. It
// returns flag.ErrHelp for -h.
func ParseFlags(name string, args []string, output io.Writer, extra ...func(*flag.FlagSet)) (Flags, error) {
	var f Flags
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	fs.BoolVar(&f.CheckConfig, "check-config", false, "validate the configuration from the environment and exit")
	for _, add := range extra {
		add(fs)
	}
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return f, nil
}

// Errors joins several validation problems into one error, or nil.
func Errors(errs ...error) error {
	return errors.Join(errs...)
}
