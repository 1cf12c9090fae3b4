package bench

import (
	"context"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/carenotify/carenotify/deploy/devstack/devca"
	"github.com/carenotify/carenotify/deploy/devstack/inbox"
	"github.com/carenotify/carenotify/deploy/devstack/stack"
)

// Scenario b's loads.
const (
	smtpClients = 10
	// maxSlope is how fast the pending count may grow, as a fraction of
	// the offered rate, for a load to count as sustained.
	maxSlope = 0.05
	// sampleEvery is how often the pending count is sampled.
	sampleEvery = 100 * time.Millisecond
	// bisections is how many rates are tried between the last sustained
	// rate and the first that was not.
	bisections = 3
)

// ladder is the list of rates scenario b tries first (events/s).
var ladder = []float64{100, 500, 1000, 2000}

// sustainedMeans is the definition printed in the results.
const sustainedMeans = "Sustained means, per run: every POST answered 200, every email arrived exactly once within the drain limit after the last POST, and the pending count (events whose planned time has passed minus emails arrived), sampled every 100 ms, grew over the run (after its first second) by less than 5% of the offered rate per second (least-squares slope): arrivals kept up with at least 95% of the offered rate. A rate is sustained when most of its runs are. Rates go 100, 500, 1,000, 2,000 events/s, then ×1.5 until one is not sustained, then three bisection steps (geometric means) between the last sustained rate and the first that was not."

// Email runs scenario b: appointment notifications posted to ingest at an
// open-loop rate, through journey and the email service, to an SMTP sink
// with STARTTLS; latency from each post's planned time to its email's
// arrival in the sink. The ceiling is raw SMTP into the same sink.
func Email(ctx context.Context, cfg Config) *Scenario {
	sc := &Scenario{ID: "b", Title: "EHR event → journey → email accepted by an SMTP sink (STARTTLS)"}
	if err := runEmail(ctx, cfg, sc); err != nil {
		sc.Status = "failed: " + err.Error()
	}
	return sc
}

func runEmail(ctx context.Context, cfg Config, sc *Scenario) error {
	varDir := filepath.Join(cfg.TmpDir, "scenario-b")
	ca, err := devca.Ensure(filepath.Join(varDir, "certs"), []string{"localhost", "127.0.0.1", "::1"})
	if err != nil {
		return err
	}
	// The sink: the development inbox's SMTP server, on a listener of the
	// harness's, so that the system and the ceiling load the same server.
	sink := inbox.New()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := sink.NewSMTPServer(l.Addr().String(), ca.ServerTLS, true, nil)
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	sinkPort := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)

	cfg.logf("b: starting the stack (builds the services)")
	s, err := stack.Start(ctx, stack.Options{
		Root: cfg.Root, VarDir: varDir, FreePorts: true,
		ExtraEnv: map[string][]string{"email": {"EMAIL_SMTP_PORT=" + sinkPort}},
	})
	if err != nil {
		return err
	}
	defer s.Stop()

	tr := &arrivals{}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		_, _ = sink.Wait(watchCtx, func(m inbox.Message) bool { tr.observe(m); return false })
	}()

	notes, err := LoadNotifications(cfg.Root)
	if err != nil {
		return err
	}
	tags := newRunTags()
	poster := NewPoster(s.IngestURL, openWorkers)
	defer poster.Close()

	// Probe: one event end to end, to check the path and to learn the
	// email's size for the ceiling.
	probeID := tags.next() + "x0"
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := poster.Post(pctx, notes.Body(probeID)); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	probe, err := sink.Wait(pctx, func(m inbox.Message) bool {
		return len(m.To) == 1 && m.To[0] == RecipientFor(probeID)
	})
	if err != nil {
		return fmt.Errorf("probe: no email: %w (see %s)", err, s.LogDir)
	}
	if !probe.TLS {
		return fmt.Errorf("probe: email arrived without TLS")
	}

	// Ceiling: raw SMTP, 10 connections, the probe's message.
	cfg.logf("b: ceiling, raw SMTP, %d connections", smtpClients)
	load, err := NewSMTPLoad(ctx, l.Addr().String(), ca.Pool, smtpClients, probe.From, probe.Raw)
	if err != nil {
		return err
	}
	ceilTag := tags.next()
	harness := series{cfg: cfg, meter: cpuMeter{"harness": 0}}
	runs, cpu, err := harness.run(ctx, true, func(ctx context.Context, d time.Duration) LoadResult {
		return ClosedLoop(ctx, smtpClients, d, func(ctx context.Context, seq int64) error {
			return load.Send(ctx, fmt.Sprintf("ceiling.%s.%d@example.org", ceilTag, seq))
		})
	})
	load.Close()
	if err != nil {
		return err
	}
	ceil := Summarize("ceiling", fmt.Sprintf("raw SMTP + STARTTLS, closed, %d connections", smtpClients), runs)
	ceil.CPU, ceil.HistName = cpu, "MAIL FROM → end of DATA answered (service time)"
	sc.Rows = append(sc.Rows, ceil)
	sc.Ceiling = Figure{Value: ceil.Throughput, Unit: "messages/s", What: fmt.Sprintf("raw SMTP, %d connections", smtpClients)}

	// System leg: the ladder.
	meter := cpuMeter{"harness": 0}
	for name, pid := range Children() {
		switch name {
		case "ingest", "journey", "email", "redis-server":
			meter[name] = pid
		}
	}
	run := emailRun{cfg: cfg, tr: tr, poster: poster, notes: notes, tags: tags, meter: meter}
	if cfg.WarmUp > 0 {
		cfg.logf("b: warm-up")
		run.once(ctx, 100, cfg.WarmUp)
		if !run.settle(ctx) {
			return fmt.Errorf("warm-up backlog did not drain")
		}
	}
	rates := ladder
	if cfg.Smoke {
		rates = []float64{50}
	}
	var (
		best     *Row
		lastOK   float64
		firstBad float64
	)
	try := func(rate float64) (bool, error) {
		row, ok, err := run.rate(ctx, rate)
		if err != nil {
			return false, err
		}
		sc.Rows = append(sc.Rows, row)
		if ok && rate > lastOK {
			lastOK, best = rate, &sc.Rows[len(sc.Rows)-1]
		}
		if !ok && (firstBad == 0 || rate < firstBad) {
			firstBad = rate
		}
		return ok, nil
	}
	for i := 0; ; i++ {
		rate := 0.0
		switch {
		case i < len(rates):
			rate = rates[i]
		case cfg.Smoke:
		default:
			rate = math.Round(rates[len(rates)-1] * math.Pow(1.5, float64(i-len(rates)+1)))
		}
		if rate == 0 {
			break
		}
		ok, err := try(rate)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
	}
	for range bisections {
		if cfg.Smoke || firstBad == 0 {
			break
		}
		lo := lastOK
		if lo == 0 {
			lo = firstBad / 4
		}
		mid := math.Round(math.Sqrt(lo * firstBad))
		if mid <= lastOK || mid >= firstBad {
			break
		}
		if _, err := try(mid); err != nil {
			return err
		}
	}
	sort.SliceStable(sc.Rows[1:], func(i, j int) bool { return sc.Rows[1+i].Offered < sc.Rows[1+j].Offered })
	if best != nil {
		// Latency at the lowest rate, which every run of the harness
		// measures, and at the highest sustained one.
		var lat []string
		for _, r := range sc.Rows {
			if r.Leg == "system" && (r.Offered == rates[0] || r.Offered == lastOK) && r.Ops > 0 {
				lat = append(lat, r.Percentiles()+fmt.Sprintf(" (end to end at %s events/s)", fmtCount(r.Offered)))
			}
		}
		sc.Latency = strings.Join(lat, "; ")
		sc.System = Figure{Value: lastOK, Unit: "events/s", What: "highest sustained open-loop rate"}
	}
	sc.Notes = append(sc.Notes,
		sustainedMeans,
		fmt.Sprintf("Each run offers its rate for %s; after it the harness waits until no email has arrived for 2 s before the next run.", cfg.RunTime),
		"Latency is end to end: from the POST's planned send time to the sink storing the message (after end of DATA and parsing), matched by the recipient address, unique per event.",
		"The whole development stack runs (stack.Start with FreePorts; email pointed at the harness's sink with EMAIL_SMTP_PORT): ingest, journey and email as processes with their default settings (EMAIL_WORKERS=4, one SMTP connection and STARTTLS handshake per message, since connection reuse is not built), redis-server, NATS and the sink in the harness.",
		fmt.Sprintf("The ceiling sends the probe email's own bytes (%d bytes) over %d connections kept open, STARTTLS verified; the system figure is the highest sustained rate, the ratio sustained events/s over ceiling messages/s.", len(probe.Raw), smtpClients),
	)
	return nil
}

// arrivals matches emails in the sink to the events of the current run.
type arrivals struct {
	total atomic.Int64 // every message the sink stored

	mu      sync.Mutex
	tag     string
	plan    []time.Time
	seen    []bool
	arrived int
	dups    int
	e2e     *Histogram
}

func (a *arrivals) begin(tag string, plan []time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tag, a.plan, a.seen, a.arrived, a.dups, a.e2e = tag, plan, make([]bool, len(plan)), 0, 0, &Histogram{}
}

// observe is called with every message the sink stores.
func (a *arrivals) observe(m inbox.Message) {
	a.total.Add(1)
	if len(m.To) != 1 {
		return
	}
	id, ok := strings.CutPrefix(m.To[0], "bench.")
	if !ok {
		return
	}
	id, ok = strings.CutSuffix(id, "@example.org")
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	rest, ok := strings.CutPrefix(id, a.tag+"x")
	if a.tag == "" || !ok {
		return // another run's, or the probe
	}
	seq, err := strconv.Atoi(rest)
	if err != nil || seq < 0 || seq >= len(a.plan) {
		return
	}
	if a.seen[seq] {
		a.dups++
		return
	}
	a.seen[seq] = true
	a.arrived++
	a.e2e.Record(m.ReceivedAt.Sub(a.plan[seq]))
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.arrived
}

// end stops matching and returns what the run saw.
func (a *arrivals) end() (e2e *Histogram, arrived, dups int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e2e, arrived, dups = a.e2e, a.arrived, a.dups
	a.tag, a.plan, a.seen = "", nil, nil
	return e2e, arrived, dups
}

// emailRun runs scenario b's system leg at one rate.
type emailRun struct {
	cfg    Config
	tr     *arrivals
	poster *Poster
	notes  *Notifications
	tags   *runTags
	meter  cpuMeter
}

// runVerdict is what one run showed.
type runVerdict struct {
	res   LoadResult // e2e latency in Latency
	ok    bool
	why   string
	slope float64 // pending growth, events/s
	cpu   map[string]time.Duration
}

// drainLimit is how long after the last POST's answer every email must
// have arrived.
func (r emailRun) drainLimit() time.Duration {
	if r.cfg.Smoke {
		return 20 * time.Second
	}
	return 10 * time.Second
}

// rate runs the configured number of runs at rate (fewer once the verdict
// is clear) and summarises them.
func (r emailRun) rate(ctx context.Context, rate float64) (Row, bool, error) {
	var (
		runs   []LoadResult
		cpus   []map[string]time.Duration
		good   int
		bad    int
		why    []string
		slopes []float64
	)
	for range r.cfg.Runs {
		if err := ctx.Err(); err != nil {
			return Row{}, false, err
		}
		r.cfg.logf("b: system, open loop, %.0f events/s", rate)
		v := r.once(ctx, rate, r.cfg.RunTime)
		runs, cpus, slopes = append(runs, v.res), append(cpus, v.cpu), append(slopes, v.slope)
		if v.ok {
			good++
		} else {
			bad++
			why = append(why, v.why)
		}
		if !r.settle(ctx) {
			return Row{}, false, fmt.Errorf("the backlog after %.0f events/s did not drain", rate)
		}
		if bad > r.cfg.Runs/2 {
			break // the majority cannot be sustained any more
		}
	}
	ok := good > len(runs)/2
	row := Summarize("system", fmt.Sprintf("open, %s events/s", fmtCount(rate)), runs)
	row.CPU, row.HistName = medianCPU(cpus), "planned POST time → email stored by the sink"
	if ok {
		row.Verdict = fmt.Sprintf("sustained (%d/%d runs; pending slope %+.1f/s)", good, len(runs), Median(slopes))
	} else {
		row.Verdict = fmt.Sprintf("**not sustained** (%d/%d runs: %s)", bad, len(runs), strings.Join(why, "; "))
	}
	return row, ok, nil
}

// once runs one open loop at rate for d and judges it.
func (r emailRun) once(ctx context.Context, rate float64, d time.Duration) runVerdict {
	tag := r.tags.next()
	var (
		start time.Time
		plan  []time.Time
	)
	type sample struct {
		t       float64 // seconds since start
		pending float64
	}
	var samples []sample
	sampling := make(chan struct{})
	stopSampling := make(chan struct{})
	loop := OpenLoop{Rate: rate, Duration: d, Workers: openWorkers, Started: func(s time.Time, p []time.Time) {
		start, plan = s, p
		r.tr.begin(tag, p)
		go func() {
			defer close(sampling)
			tick := time.NewTicker(sampleEvery)
			defer tick.Stop()
			for {
				select {
				case <-stopSampling:
					return
				case now := <-tick.C:
					if now.After(start.Add(d)) {
						return
					}
					due := sort.Search(len(plan), func(i int) bool { return plan[i].After(now) })
					samples = append(samples, sample{t: now.Sub(start).Seconds(), pending: float64(due - r.tr.count())})
				}
			}
		}()
	}}
	before := r.meter.snapshot()
	res := loop.Run(ctx, func(ctx context.Context, seq int64) error {
		return r.poster.Post(ctx, r.notes.Body(tag+"x"+strconv.FormatInt(seq, 10)))
	})
	close(stopSampling)
	if start.IsZero() {
		return runVerdict{res: res, why: "no load planned"}
	}
	<-sampling

	// Drain: wait for the rest of the emails.
	want := len(plan)
	deadline := time.Now().Add(r.drainLimit())
	for r.tr.count() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	e2e, arrived, dups := r.tr.end()
	v := runVerdict{cpu: per1k(before, r.meter.snapshot(), int64(want))}
	v.res = LoadResult{Latency: e2e, Ops: int64(arrived), Errors: res.Errors, FirstErr: res.FirstErr,
		Elapsed: d, Offered: rate}

	// Slope of the pending count over the run, after its first second
	// (the pipeline filling up).
	var xs, ys []float64
	for _, s := range samples {
		if s.t >= min(1, d.Seconds()/2) {
			xs, ys = append(xs, s.t), append(ys, s.pending)
		}
	}
	v.slope = slope(xs, ys)
	var why []string
	if res.Errors > 0 {
		why = append(why, fmt.Sprintf("%d POST errors", res.Errors))
	}
	if arrived < want {
		why = append(why, fmt.Sprintf("%d of %d emails missing %s after the last POST", want-arrived, want, r.drainLimit()))
	}
	if dups > 0 {
		why = append(why, fmt.Sprintf("%d duplicate emails", dups))
	}
	// A smoke run is too short for a trend; it checks the path only.
	if v.slope > maxSlope*rate && !r.cfg.Smoke {
		why = append(why, fmt.Sprintf("pending grew %.0f/s", v.slope))
	}
	v.ok = len(why) == 0
	v.why = strings.Join(why, ", ")
	return v
}

// settle waits until the stack has nothing in flight: no email arrived
// for two seconds. It gives up after three minutes.
func (r emailRun) settle(ctx context.Context) bool {
	deadline := time.Now().Add(3 * time.Minute)
	quiet := 2 * time.Second
	if r.cfg.Smoke {
		quiet = 500 * time.Millisecond
	}
	last, lastChange := r.sinkCount(), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		if n := r.sinkCount(); n != last {
			last, lastChange = n, time.Now()
		}
		if time.Since(lastChange) >= quiet {
			return true
		}
	}
	return false
}

// sinkCount is how many messages the sink has stored so far.
func (r emailRun) sinkCount() int64 {
	return r.tr.total.Load()
}

// slope is the least-squares slope of ys over xs, 0 for fewer than two
// points.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}
