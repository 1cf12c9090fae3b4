// Command demo posts sample EHR notifications to a running development stack
// (`make run`) and shows the email that arrives in the dev inbox (`make demo`).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/carenotify/carenotify/deploy/devstack/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	o := demo.Options{}
	fs.StringVar(&o.IngestURL, "ingest", "http://127.0.0.1:8080", "ingest base URL")
	fs.StringVar(&o.InboxURL, "inbox", "http://127.0.0.1:8025", "dev inbox base URL")
	fs.StringVar(&o.Source, "source", "demo", "EHR source name")
	fs.StringVar(&o.Token, "token", "demo-token", "EHR source bearer token")
	fs.StringVar(&o.Dir, "dir", "deploy/examples/notifications", "directory of sample notifications")
	fs.DurationVar(&o.Wait, "wait", 30*time.Second, "how long to wait for the email")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Out = out
	return demo.Run(ctx, o)
}
