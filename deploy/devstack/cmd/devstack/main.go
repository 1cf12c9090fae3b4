// Command devstack runs the whole of carenotify on one machine (`make run`):
// embedded NATS, Redis, the development inbox and the five services.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/carenotify/carenotify/deploy/devstack/stack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "devstack")
	s, err := stack.Start(ctx, stack.Options{
		Root:     root,
		VarDir:   filepath.Join(root, "var"),
		RedisURL: os.Getenv("REDIS_URL"),
		Output:   os.Stdout,
		Logger:   logger,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\ncarenotify is running.\n  dev inbox:  %s\n  FHIR ingest: %s/fhir/%s/notifications (Authorization: Bearer %s)\n  journey admin: CARENOTIFY_TOKEN=%s carenotifyctl trace --tenant %s <patient id>\n  try:        make demo\nCtrl-C stops everything.\n\n",
		s.InboxURL, s.IngestURL, stack.DemoSource, stack.DemoToken, stack.DevAdminToken, stack.DemoTenant)
	select {
	case <-ctx.Done():
	case name := <-s.Exited():
		logger.Error("service exited; stopping", "service", name)
	}
	s.Stop()
	logger.Info("stopped")
	return nil
}
