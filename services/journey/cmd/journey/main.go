// Command journey runs carenotify's journey service: it turns clinical
// events into the messages care-ops journeys send.
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
	_ "time/tzdata" // JOURNEY_TIMEZONE works on images without a zoneinfo database

	"github.com/carenotify/carenotify/pkg/audit"
	pkgconfig "github.com/carenotify/carenotify/pkg/config"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/log"
	"github.com/carenotify/carenotify/services/journey/internal/adminauth"
	"github.com/carenotify/carenotify/services/journey/internal/config"
	"github.com/carenotify/carenotify/services/journey/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "journey:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args, environ []string, stdout io.Writer) error {
	flags, err := pkgconfig.ParseFlags("journey", args, stdout)
	if err != nil {
		return err
	}
	cfg, err := pkgconfig.Load[config.Config](environ)
	if err != nil {
		return err
	}
	if flags.CheckConfig {
		if _, err := envelope.LoadKeyring(cfg.KeyringDir); err != nil {
			return err
		}
		if _, err := audit.LoadPseudonymKey(cfg.AuditPseudonymKeyFile); err != nil {
			return err
		}
		tokens, err := adminauth.Load(cfg.AdminTokensFile, cfg.AdminTokens)
		if err != nil {
			return err
		}
		// Care-ops check their journey and template edits with this.
		set, err := service.LoadCatalog(cfg)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "config ok: %d journeys, %d template files, %d admin tokens\n", len(set.Journeys()), set.Templates(), tokens.Len())
		return err
	}
	return service.Run(ctx, cfg, log.New(stdout, cfg.LogLevel, "journey"))
}
