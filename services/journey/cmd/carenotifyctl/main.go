// Command carenotifyctl is the operator's command line for carenotify:
// key management (`keys`) and the audit trail (`audit`).
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
// own file (keys.go, audit.go).
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "carenotifyctl",
		Short:         "Operate carenotify: encryption keys and the audit trail",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("nats-url", envOr("CARENOTIFY_NATS_URL", "nats://127.0.0.1:4222"), "NATS server with JetStream (env CARENOTIFY_NATS_URL)")
	root.AddCommand(newKeysCmd(), newAuditCmd())
	return root
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
