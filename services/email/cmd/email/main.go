// Command email runs carenotify's email channel service.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/carenotify/carenotify/pkg/audit"
	pkgconfig "github.com/carenotify/carenotify/pkg/config"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/log"
	"github.com/carenotify/carenotify/services/email/internal/config"
	"github.com/carenotify/carenotify/services/email/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "email:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args, environ []string, stdout io.Writer) error {
	flags, err := pkgconfig.ParseFlags("email", args, stdout)
	if err != nil {
		return err
	}
	cfg, err := pkgconfig.Load[config.Config](environ)
	if err != nil {
		return err
	}
	if flags.CheckConfig {
		// Load the keyring as the service would, so a missing or broken
		// key file is caught before deployment. Key bytes are never printed.
		if _, err := envelope.LoadKeyring(cfg.KeyringDir); err != nil {
			return fmt.Errorf("EMAIL_KEYRING_DIR: %w", err)
		}
		if _, err := audit.LoadPseudonymKey(cfg.AuditPseudonymKeyFile); err != nil {
			return fmt.Errorf("EMAIL_AUDIT_PSEUDONYM_KEY_FILE: %w", err)
		}
		_, err := fmt.Fprintln(stdout, "config ok")
		return err
	}
	return service.Run(ctx, cfg, log.New(stdout, cfg.LogLevel, "email"))
}
