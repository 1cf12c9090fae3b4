// Command ingest runs carenotify's EHR ingestion service: it accepts FHIR
// subscription notifications and publishes ClinicalEvents to NATS JetStream.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/carenotify/carenotify/pkg/audit"
	pkgconfig "github.com/carenotify/carenotify/pkg/config"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/log"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
	"github.com/carenotify/carenotify/services/ingest/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdin, os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

// minTokenLen is the shortest token -hash-token hashes: a stored SHA-256
// protects only a token too long to guess.
const minTokenLen = 24

func run(ctx context.Context, args, environ []string, stdin io.Reader, stdout io.Writer) error {
	var hashToken bool
	flags, err := pkgconfig.ParseFlags("ingest", args, stdout, func(fs *flag.FlagSet) {
		fs.BoolVar(&hashToken, "hash-token", false,
			"read a bearer token from stdin (one line) and print the token_hash to configure for it (sha256:<hex>), then exit")
	})
	if err != nil {
		return err
	}
	if hashToken {
		return printTokenHash(stdin, stdout)
	}
	cfg, err := pkgconfig.Load[config.Config](environ)
	if err != nil {
		return err
	}
	if flags.CheckConfig {
		for _, w := range cfg.Warnings {
			if _, err := fmt.Fprintln(stdout, "warning:", w); err != nil {
				return err
			}
		}
		if _, err := envelope.LoadKeyring(cfg.KeyringDir); err != nil {
			return err
		}
		if _, err := audit.LoadPseudonymKey(cfg.AuditPseudonymKeyFile); err != nil {
			return err
		}
		if _, err := config.AllHMACSecrets(cfg.AllSources(), lookupIn(environ)); err != nil {
			return err
		}
		_, err := fmt.Fprintln(stdout, "config ok")
		return err
	}
	logger := log.New(stdout, cfg.LogLevel, "ingest")
	for _, w := range cfg.Warnings {
		logger.Warn("configuration", "warning", w)
	}
	return service.Run(ctx, cfg, logger)
}

// lookupIn returns an os.LookupEnv over environ.
func lookupIn(environ []string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for _, kv := range slices.Backward(environ) {
			if k, v, ok := strings.Cut(kv, "="); ok && k == name {
				return v, true
			}
		}
		return "", false
	}
}

// printTokenHash reads one token line from stdin (so that it stays out of
// the shell history and the process list) and prints its hash.
func printTokenHash(stdin io.Reader, stdout io.Writer) error {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read token from stdin: %w", err)
	}
	token := strings.TrimRight(line, "\r\n")
	switch {
	case token == "":
		return errors.New("-hash-token: no token on stdin; e.g. openssl rand -base64 32 | tee token | ingest -hash-token")
	case strings.TrimSpace(token) != token:
		return errors.New("-hash-token: the token starts or ends with white space")
	case len(token) < minTokenLen:
		return fmt.Errorf("-hash-token: the token is shorter than %d characters; use a random one, e.g. openssl rand -base64 32", minTokenLen)
	}
	_, err = fmt.Fprintln(stdout, config.HashToken(token))
	return err
}
