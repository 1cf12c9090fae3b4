package bench

import (
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

// Report is everything one `make bench` run measured.
type Report struct {
	// Machine is where it ran.
	Machine Machine
	// Started is when the run began; Took how long it lasted.
	Started time.Time
	Took    time.Duration
	// Smoke marks a smoke run, whose figures mean nothing.
	Smoke bool
	// Runs is how many measured runs each figure is the median of.
	Runs int
	// Scenarios in table order.
	Scenarios []*Scenario
	// Load holds the machine's 1-minute load average, sampled during the
	// run.
	Load []float64
}

// Scenario is one row of the results table and its detail.
type Scenario struct {
	// ID is the scenario's letter in issue 7 ("a", "a′", "b", ...).
	ID string
	// Title says what the system leg does.
	Title string
	// Status is empty when the scenario was measured; otherwise it says
	// why not ("skipped: ...", "not measurable yet: ...", "failed: ...").
	Status string
	// Ceiling and System are the headline figures; Ratio is System/Ceiling.
	Ceiling, System Figure
	// Latency is the system leg's headline latency and where it was taken.
	Latency string
	// Rows are every measured load, ceiling first.
	Rows []Row
	// Notes explain the figures.
	Notes []string
}

// Ratio returns System/Ceiling, or NaN when either is missing.
func (s *Scenario) Ratio() float64 {
	if s.Ceiling.Value <= 0 || s.System.Value <= 0 {
		return math.NaN()
	}
	return s.System.Value / s.Ceiling.Value
}

// Figure is a headline number.
type Figure struct {
	Value float64
	// Unit, e.g. "publishes/s".
	Unit string
	// What qualifies it, e.g. "16 clients".
	What string
}

func (f Figure) String() string {
	if f.Value <= 0 {
		return "—"
	}
	s := fmtCount(f.Value) + " " + f.Unit
	if f.What != "" {
		s += " (" + f.What + ")"
	}
	return s
}

// Row is one load level, summarised over its runs.
type Row struct {
	// Leg is "ceiling" or "system".
	Leg string
	// Load describes the load, e.g. "closed, 16 clients".
	Load string
	// Offered is an open loop's planned rate (ops/s); 0 for a closed loop.
	Offered float64
	// Throughput is the median of the runs' successful ops per second.
	Throughput float64
	// P50, P99 and P999 are medians of the runs' percentiles; Max is the
	// largest value over all runs.
	P50, P99, P999, Max time.Duration
	// Runs, Ops and Errors are totals over the runs.
	Runs        int
	Ops, Errors int64
	// FirstErr is the first error seen, if any.
	FirstErr string
	// Verdict, when set, judges the load (scenario b: sustained or not).
	Verdict string
	// CPU is the CPU time each process used per 1,000 operations (median
	// over the runs), when measured.
	CPU map[string]time.Duration
	// Hist merges every run's latencies; HistName says what it holds.
	Hist     *Histogram
	HistName string
}

// Summarize turns the runs of one load level into a Row: medians of the
// per-run figures, totals of the counts, and the merged histogram.
func Summarize(leg, load string, runs []LoadResult) Row {
	r := Row{Leg: leg, Load: load, Runs: len(runs), Hist: &Histogram{}}
	var tput []float64
	var p50, p99, p999 []time.Duration
	for _, run := range runs {
		tput = append(tput, run.Throughput())
		p50 = append(p50, run.Latency.Quantile(0.5))
		p99 = append(p99, run.Latency.Quantile(0.99))
		p999 = append(p999, run.Latency.Quantile(0.999))
		r.Max = max(r.Max, run.Latency.Max())
		r.Ops += run.Ops
		r.Errors += run.Errors
		if r.FirstErr == "" && run.FirstErr != nil {
			r.FirstErr = run.FirstErr.Error()
		}
		r.Offered = run.Offered
		r.Hist.Merge(run.Latency)
	}
	r.Throughput = Median(tput)
	r.P50, r.P99, r.P999 = Median(p50), Median(p99), Median(p999)
	return r
}

// Median returns the median of xs (the mean of the middle two for an even
// count), or zero for none.
func Median[T ~int64 | ~float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Percentiles renders p50 / p99 / p99.9 of a row.
func (r Row) Percentiles() string {
	return fmtDur(r.P50) + " / " + fmtDur(r.P99) + " / " + fmtDur(r.P999)
}

// WriteMarkdown writes the report as the bench/results.md document.
func (rep *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := rep.Machine

	p("# carenotify benchmark results\n\n")
	if rep.Smoke {
		p("> **Smoke run** (`make bench-smoke`): runs far too short to mean anything; it only shows the harness works.\n\n")
	}
	p("Written by `make bench` (test/bench, issue 7) on %s, in %s. ", rep.Started.UTC().Format("2006-01-02 15:04 MST"), rep.Took.Round(time.Second))
	p("Every figure is the median of %d run(s) after a warm-up (run lengths are given per scenario); ", rep.Runs)
	p("the machines are shared and noisy, so only the ratios, measured back to back in one run, mean much.\n\n")

	p("## Machine\n\n| | |\n|---|---|\n")
	p("| CPU | %s |\n| logical cores | %d |\n| kernel | %s |\n| Go | %s |\n", m.CPU, m.Cores, m.Kernel, m.Go)
	p("| nats-server (embedded) | %s |\n| nats.go | %s |\n| redis-server | %s |\n| commit | %s |\n", m.NATSServer, m.NATSClient, m.Redis, m.Commit)
	p("| load average (1 min) during the run | %s |\n\n", describeLoad(rep.Load))

	p("## Results\n\n")
	p("| scenario | ceiling | system | system / ceiling | system latency p50 / p99 / p99.9 | status |\n|---|---|---|---|---|---|\n")
	for _, s := range rep.Scenarios {
		status := s.Status
		if status == "" {
			status = "measured"
		}
		ratio := "—"
		if r := s.Ratio(); !math.IsNaN(r) {
			ratio = "**" + fmtRatio(r) + "**"
		}
		lat := s.Latency
		if lat == "" {
			lat = "—"
		}
		p("| %s: %s | %s | %s | %s | %s | %s |\n", s.ID, s.Title, s.Ceiling, s.System, ratio, lat, status)
	}
	p("\n")

	for _, s := range rep.Scenarios {
		if len(s.Rows) == 0 && len(s.Notes) == 0 {
			continue
		}
		p("### %s: %s\n\n", s.ID, s.Title)
		if s.Status != "" {
			p("Status: %s.\n\n", s.Status)
		}
		if len(s.Rows) > 0 {
			p("| leg | load | throughput /s | p50 | p99 | p99.9 | max | ops | errors | verdict | CPU per 1,000 ops |\n")
			p("|---|---|---|---|---|---|---|---|---|---|---|\n")
			for _, r := range s.Rows {
				p("| %s | %s | %s | %s | %s | %s | %s | %d | %d | %s | %s |\n", r.Leg, r.Load, fmtCount(r.Throughput),
					fmtDur(r.P50), fmtDur(r.P99), fmtDur(r.P999), fmtDur(r.Max), r.Ops, r.Errors, dash(r.Verdict), fmtCPU(r.CPU))
			}
			p("\n")
			for _, r := range s.Rows {
				if r.FirstErr != "" {
					p("- first error, %s %s: `%s`\n", r.Leg, r.Load, strings.ReplaceAll(r.FirstErr, "`", "'"))
				}
			}
		}
		for _, n := range s.Notes {
			p("- %s\n", n)
		}
		p("\n")
	}

	p("## How measured\n\n%s\n\n", howMeasured)

	p("<details><summary>Raw histograms (bucket counts)</summary>\n\n")
	p("Each histogram merges every measured run of one load. The harness records into log-linear buckets ")
	p("(128 per power of two, under 0.8%% wide, as HdrHistogram with two significant digits); ")
	p("to stay readable they are shown re-binned to 8 buckets per power of two. Each line is `from – to  count`.\n\n")
	for _, s := range rep.Scenarios {
		for _, r := range s.Rows {
			if r.Hist == nil || r.Hist.Count() == 0 {
				continue
			}
			name := r.HistName
			if name == "" {
				name = "latency"
			}
			p("**%s, %s %s**: %s; %s\n\n```\n", s.ID, r.Leg, r.Load, name, r.Hist)
			for _, bk := range r.Hist.Buckets(8) {
				p("%9s – %-9s %d\n", fmtDur(bk.Lo), fmtDur(bk.Hi), bk.Count)
			}
			p("```\n\n")
		}
	}
	p("</details>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

const howMeasured = `Everything runs on this machine over loopback: the harness (load generator, the embedded NATS
JetStream server with file storage in a temporary directory, and the SMTP sink) in one process, the
services as separate processes built from this checkout. Closed loops run N clients that each send the
next request as soon as the previous one is answered; they give throughput, and their latencies are
service times. Open loops send at planned times (rate × run time requests, evenly spaced) from a pool of
workers, and measure each latency from the request's planned time, not from when it was actually sent,
so a stall is charged to every request it delays (no coordinated omission). Latencies go into
log-linear histograms (HdrHistogram-style, under 0.8% error); percentiles are each run's, and the table
shows the median over the runs. A ceiling leg runs back to back with its system leg, against the same
server, with the same payload size, so "system / ceiling" compares like with like on a noisy machine.
CPU per 1,000 ops is user + system time from /proc/<pid>/stat (10 ms resolution) divided by the
operations of the run; "harness" includes the embedded NATS server and the SMTP sink.`

// fmtRatio gives two decimals, or two significant digits below 0.1.
func fmtRatio(r float64) string {
	if r < 0.1 {
		return fmt.Sprintf("%.2g", r)
	}
	return fmt.Sprintf("%.2f", r)
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// fmtDur renders d with three significant digits, in µs, ms or s.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return sig3(float64(d)/1e3) + "µs"
	case d < time.Second:
		return sig3(float64(d)/1e6) + "ms"
	default:
		return sig3(float64(d)/1e9) + "s"
	}
}

func sig3(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// fmtCount renders a rate with thousands separators, or one decimal when
// small.
func fmtCount(v float64) string {
	if v < 100 {
		return fmt.Sprintf("%.1f", v)
	}
	s := fmt.Sprintf("%.0f", v)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func fmtCPU(cpu map[string]time.Duration) string {
	if len(cpu) == 0 {
		return "—"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(cpu)) {
		parts = append(parts, fmt.Sprintf("%s %s", k, fmtDur(cpu[k])))
	}
	return strings.Join(parts, ", ")
}

// WriteFile writes the report's markdown to path, creating its directory.
func WriteFile(path string, rep *Report) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var b strings.Builder
	if err := rep.WriteMarkdown(&b); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// StartCPUProfile profiles the harness process into path until the
// returned function is called.
func StartCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
