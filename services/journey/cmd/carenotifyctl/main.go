// Command carenotifyctl is the operator's command line for carenotify:
// key management (`keys`), the audit trail (`audit`) and the journey
// service's admin API (`trace`).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "carenotifyctl:", err)
		os.Exit(1)
	}
}

// newRootCmd builds the command tree; each subcommand group lives in its
// own file (keys.go, audit.go, trace.go).
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "carenotifyctl",
		Short:         "Operate carenotify: encryption keys, the audit trail, message traces",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("nats-url", envOr("CARENOTIFY_NATS_URL", "nats://127.0.0.1:4222"), "NATS server with JetStream (env CARENOTIFY_NATS_URL)")
	root.PersistentFlags().String("journey-addr", envOr("CARENOTIFY_JOURNEY_ADDR", "127.0.0.1:9101"), "journey service admin API, gRPC host:port (env CARENOTIFY_JOURNEY_ADDR)")
	root.PersistentFlags().String("token", "", "bearer token for the journey admin API (env CARENOTIFY_TOKEN; prefer the variable: flags show in process lists)")
	root.AddCommand(newKeysCmd(), newAuditCmd(), newTraceCmd(), newJourneysCmd(), newDeadLettersCmd(), newAdminCmd(), newConsentCmd())
	return root
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
