package bench

import (
	"fmt"
	"github.com/carenotify/carenotify/pkg/corpus"

	"context"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// Scenario ids, in table order. "a2" is accepted for "a′" on the command
// line.
var AllScenarios = []string{"a", "a′", "b", "c", "d", "e", "f"}

// Options configure Run.
type Options struct {
	// Root is the repository root; found from the working directory when
	// empty.
	Root string
	// Scenarios to run, ids from AllScenarios.
	Scenarios []string
	// Smoke makes every run a few seconds long.
	Smoke bool
	// Runs is how many runs each figure is the median of (full mode).
	Runs int
	// ListmonkBin is where a Listmonk build may be ($LISTMONK_BIN).
	ListmonkBin string
	// Progress receives a line per step.
	Progress io.Writer
	// Keep leaves the temporary directory (logs, binaries, NATS stores)
	// in place, for debugging and profiling.
	Keep bool
	// TimerPending is scenario e's count of pending schedules; 0 means
	// DefaultTimerPending (SmokeTimerPending in smoke mode).
	TimerPending int
}

// Run runs the scenarios and returns the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Root == "" {
		root, err := FindRoot()
		if err != nil {
			return nil, err
		}
		o.Root = root
	}
	for _, id := range o.Scenarios {
		if !slices.Contains(AllScenarios, id) {
			return nil, fmt.Errorf("unknown scenario %q (have %s)", id, strings.Join(AllScenarios, ", "))
		}
	}
	tmp, err := os.MkdirTemp("", "carenotify-bench-")
	if err != nil {
		return nil, err
	}
	if o.Keep && o.Progress != nil {
		fmt.Fprintf(o.Progress, "bench: keeping %s\n", tmp)
	} else if !o.Keep {
		defer os.RemoveAll(tmp)
	}

	cfg := Config{Root: o.Root, TmpDir: tmp, Smoke: o.Smoke, Runs: max(o.Runs, 1),
		RunTime: 5 * time.Second, WarmUp: 2 * time.Second, Progress: o.Progress, ListmonkBin: o.ListmonkBin}
	if o.Smoke {
		cfg.Runs, cfg.RunTime, cfg.WarmUp = 1, 500*time.Millisecond, 200*time.Millisecond
	}
	rep := &Report{Machine: DescribeMachine(ctx, o.Root), Started: time.Now(), Smoke: o.Smoke,
		Runs: cfg.Runs}
	load := StartLoadSampler(ctx, 30*time.Second)
	defer func() { rep.Load = load.Stop() }()

	var ingestBin string
	if slices.Contains(o.Scenarios, "a") || slices.Contains(o.Scenarios, "a′") || slices.Contains(o.Scenarios, "d") || slices.Contains(o.Scenarios, "e") {
		cfg.logf("building ingest")
		if ingestBin, err = BuildIngest(ctx, o.Root, tmp); err != nil {
			return nil, err
		}
	}
	for _, id := range AllScenarios {
		if !slices.Contains(o.Scenarios, id) {
			continue
		}
		var sc *Scenario
		switch id {
		case "a":
			sc = Ingest(ctx, cfg, ingestBin, false)
		case "a′":
			sc = Ingest(ctx, cfg, ingestBin, true)
		case "b":
			bcfg := cfg
			bcfg.RunTime = 10 * time.Second
			if o.Smoke {
				bcfg.RunTime, bcfg.WarmUp = 2*time.Second, 0
			}
			sc = Email(ctx, bcfg)
		case "c":
			ccfg := cfg
			if o.Smoke {
				// Two short runs, so the smoke run checks the path
				// between runs (sessions closed, sink held again).
				ccfg.Runs = 2
			}
			sc = EmailChannel(ctx, ccfg)
		case "d":
			sc = HL7(ctx, cfg, ingestBin)
		case "e":
			sc = Timers(ctx, cfg, ingestBin, o.TimerPending)
		case "f":
			sc = JourneyEvaluation(ctx, cfg)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		rep.Scenarios = append(rep.Scenarios, sc)
		cfg.logf("%s: %s", id, summaryLine(sc))
	}
	rep.Took = time.Since(rep.Started)
	return rep, nil
}

func summaryLine(sc *Scenario) string {
	if sc.Status != "" {
		return sc.Status
	}
	return fmt.Sprintf("ceiling %s, system %s, ratio %s", sc.Ceiling, sc.System, fmtRatio(sc.Ratio()))
}

// Problems lists what makes a smoke run fail: scenarios that failed and
// loads with errors.
func (rep *Report) Problems() []string {
	var out []string
	for _, s := range rep.Scenarios {
		if strings.HasPrefix(s.Status, "failed") {
			out = append(out, s.ID+": "+s.Status)
		}
		for _, r := range s.Rows {
			if r.Errors > 0 {
				out = append(out, fmt.Sprintf("%s %s %s: %d errors, first: %s", s.ID, r.Leg, r.Load, r.Errors, r.FirstErr))
			}
			if strings.Contains(r.Verdict, "not sustained") {
				out = append(out, fmt.Sprintf("%s %s %s: %s", s.ID, r.Leg, r.Load, r.Verdict))
			}
			if r.Ops == 0 {
				out = append(out, fmt.Sprintf("%s %s %s: no operations completed", s.ID, r.Leg, r.Load))
			}
		}
	}
	return out
}

// FindRoot returns the nearest directory at or above the working directory
// that holds go.work.
func FindRoot() (string, error) { return corpus.FindRoot() }
