// Command bench runs carenotify's benchmark scenarios and writes the
// results table (`make bench`, `make bench-smoke`; see test/bench).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/carenotify/carenotify/test/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	smoke := fs.Bool("smoke", false, "a few seconds per scenario: check the harness works; fail on any error")
	out := fs.String("out", "bench/results.md", "results file to write")
	scenarios := fs.String("scenarios", strings.Join(bench.AllScenarios, ","), "comma-separated scenarios to run (a2 for a′)")
	runs := fs.Int("runs", 3, "measured runs per figure (the median is reported)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the harness process (load generator, NATS, SMTP sink) to this file")
	pending := fs.Int("e-pending", 0, "scenario e: pending schedules per leg (default 1,000,000; smoke 2,000)")
	keep := fs.Bool("keep", false, "keep the temporary directory (service logs, binaries) and print its path")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ids := strings.Split(strings.ReplaceAll(strings.ReplaceAll(*scenarios, "a2", "a′"), "a'", "a′"), ",")
	if *cpuprofile != "" {
		stopProfile, err := bench.StartCPUProfile(*cpuprofile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	rep, err := bench.Run(ctx, bench.Options{Scenarios: ids, Smoke: *smoke, Runs: *runs,
		ListmonkBin: os.Getenv("LISTMONK_BIN"), Progress: os.Stderr, Keep: *keep, TimerPending: *pending})
	if err != nil {
		return err
	}
	if err := bench.WriteFile(*out, rep); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s\n", *out)
	if p := rep.Problems(); *smoke && len(p) > 0 {
		return fmt.Errorf("smoke run found problems:\n  %s", strings.Join(p, "\n  "))
	}
	return nil
}
