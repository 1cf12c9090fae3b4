package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/deploy/devstack/demo"
	"github.com/carenotify/carenotify/deploy/devstack/stack"
	"github.com/carenotify/carenotify/pkg/bus"
)

// Scenario f's sizes and names.
const (
	evalEvents = 10000
	evalSmoke  = 200
	// evalDurable is journey's consumer of EHR_EVENTS (service.Durable).
	evalDurable = "journey"
	// evalPatient is the one patient every booking is for: one consent
	// record (email, treatment: denied) then covers every event.
	evalPatient = "bench-pat-eval"
)

// evalJourney is the journey scenario f loads: the example confirmation
// and reminder in one, with the example reminder's condition and
// cancel/replan triggers. Per booked event journey checks the condition,
// checks consent for the confirmation (denied, so nothing is sent) and
// plans the reminder's wait_until timer.
const evalJourney = `id: bench-evaluation
purpose: treatment
trigger: appointment.booked
when: event.appointment.start > now
key: event.subject
cancel_on: [appointment.cancelled, appointment.noshow]
replan_on: [appointment.rescheduled]
steps:
  - send: email
    template: appointment-confirmation
    security: phi
  - wait_until: event.appointment.start - duration("24h")
  - send: email
    template: appointment-reminder
    security: phi
`

// JourneyEvaluation is scenario f: booked events pre-queued on EHR_EVENTS
// through journey's events consumer (CEL condition, consent check at the
// send step, timer planned for the next wait), against the ceiling of the
// same events consumed from JetStream with the same consumer code
// (bus.Consume) and a handler that does nothing.
func JourneyEvaluation(ctx context.Context, cfg Config) *Scenario {
	sc := &Scenario{ID: "f", Title: "journey evaluation: booked events on EHR_EVENTS → journey (CEL condition, consent check, timer planned)"}
	if err := runEvaluation(ctx, cfg, sc); err != nil {
		sc.Status = "failed: " + err.Error()
	}
	return sc
}

// evalBench is scenario f's running system.
type evalBench struct {
	cfg    Config
	s      *stack.Stack
	js     jetstream.JetStream
	events jetstream.Stream
	timers jetstream.Stream
	notes  *Notifications
	poster *Poster
	tags   *runTags
}

// evalBatch is one batch of events waiting on EHR_EVENTS.
type evalBatch struct {
	first, last uint64 // stream sequences
	booked      int
}

func (b evalBatch) count() int { return int(b.last - b.first + 1) }

func runEvaluation(ctx context.Context, cfg Config, sc *Scenario) error {
	n := evalEvents
	if cfg.Smoke {
		n = evalSmoke
	}
	varDir := filepath.Join(cfg.TmpDir, "scenario-f")
	jdir := filepath.Join(varDir, "journeys")
	if err := os.MkdirAll(jdir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(jdir, "bench-evaluation.yaml"), []byte(evalJourney), 0o644); err != nil {
		return err
	}
	cfg.logf("f: starting the stack (builds the services)")
	s, err := stack.Start(ctx, stack.Options{Root: cfg.Root, VarDir: varDir, FreePorts: true,
		ExtraEnv: map[string][]string{"journey": {"JOURNEY_JOURNEYS_DIR=" + jdir}}})
	if err != nil {
		return err
	}
	defer s.Stop()
	nc, err := nats.Connect(s.NATSURL, nats.Name("bench-admin"))
	if err != nil {
		return err
	}
	defer nc.Close()
	b := &evalBench{cfg: cfg, s: s, tags: newRunTags()}
	if b.js, err = jetstream.New(nc); err != nil {
		return err
	}
	if b.events, err = b.js.Stream(ctx, bus.StreamEHREvents); err != nil {
		return err
	}
	if b.timers, err = b.js.Stream(ctx, bus.JourneyTimers(1).Name); err != nil {
		return fmt.Errorf("journey declared no %s: %w", bus.JourneyTimers(1).Name, err)
	}
	raw, err := os.ReadFile(filepath.Join(cfg.Root, "deploy", "examples", "notifications", "appointment-booked.json"))
	if err != nil {
		return err
	}
	tmpl, err := demo.NewBooking(raw, "bench-appt-"+placeholder, evalPatient, RecipientFor("eval"))
	if err != nil {
		return err
	}
	b.notes = &Notifications{template: tmpl}
	b.poster = NewPoster(s.IngestURL, timerPublishers)
	defer b.poster.Close()
	if err := denyConsent(ctx, "http://"+s.Addrs["journey"], evalPatient); err != nil {
		return err
	}
	// journey's CPU is read per round (it is restarted every round).
	meter := cpuMeter{"redis-server": Children()["redis-server"], "harness": 0}

	if cfg.WarmUp > 0 {
		cfg.logf("f: warm-up, %d events", max(n/10, 1))
		if _, _, _, err := b.round(ctx, max(n/10, 1), meter); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	var ceilRuns, sysRuns []LoadResult
	var ceilCPU, sysCPU []map[string]time.Duration
	var planned int
	for run := range cfg.Runs {
		cfg.logf("f: run %d/%d: %d bookings through ingest (journey stopped), then the ceiling, then journey", run+1, cfg.Runs, n)
		c, sys, p, err := b.round(ctx, n, meter)
		if err != nil {
			return err
		}
		ceilRuns, sysRuns = append(ceilRuns, c.res), append(sysRuns, sys.res)
		ceilCPU, sysCPU = append(ceilCPU, c.cpu), append(sysCPU, sys.cpu)
		planned += p
	}
	ceil := Summarize("ceiling", "bus.Consume of the same events (DoubleAck each), no-op handler, 1 consumer", ceilRuns)
	ceil.CPU = medianCPU(ceilCPU)
	sys := Summarize("system", fmt.Sprintf("journey's events consumer, %s booked events pre-queued", fmtCount(float64(n))), sysRuns)
	sys.CPU = medianCPU(sysCPU)
	sc.Rows = append(sc.Rows, ceil, sys)
	sc.Ceiling = Figure{Value: ceil.Throughput, Unit: "events/s", What: "JetStream consume + ack, same consumer code"}
	sc.System = Figure{Value: sys.Throughput, Unit: "events/s", What: "through journey evaluation"}
	if sys.Throughput > 0 {
		sc.Latency = fmt.Sprintf("%s per event on average (one event at a time; no per-event latency is measured)", fmtDur(time.Duration(float64(time.Second)/sys.Throughput)))
	}
	sc.Notes = append(sc.Notes,
		fmt.Sprintf("The development stack runs (stack.Start, FreePorts; ingest, journey, email, sms, forms as processes, NATS embedded in the harness, redis-server) with journey loading one journey, bench-evaluation: trigger appointment.booked, `when: event.appointment.start > now`, cancel_on and replan_on as the example reminder, then a send email step (appointment-confirmation), a wait_until (start − 24 h) and a send email step (appointment-reminder). Every booking is for one patient whose email/treatment consent is set to denied through the admin API, so per event journey evaluates the CEL condition, checks cancel_on/replan_on/wait_for, checks consent at the first send step (a sealed Redis record, opened; suppressed no_consent, nothing sent), plans the reminder's timer (a sealed JetStream message schedule) and writes its audit records (journey.started, message.decided, journey.planned); journey's default settings otherwise (log level info)."),
		fmt.Sprintf("Per run: journey is stopped (SIGTERM; its durable consumer %s stays), %s FHIR bookings of distinct appointments 48 h+ ahead are posted to ingest from %d posters (not timed), then the ceiling consumes exactly that range of EHR_EVENTS with a durable consumer through pkg/bus Consume (what journey uses: 64 prefetched, one message at a time, DoubleAck) and a handler that returns at once; then journey is started again, and the system figure is the events acknowledged from the first acknowledgement seen until the consumer has nothing pending or unacknowledged (its consumer info polled every 20 ms), over that time, so journey's start is not timed; its CPU column does include its start. The runs planned %d timers on JOURNEY_TIMERS for %d bookings.", evalDurable, fmtCount(float64(n)), timerPublishers, planned, n*cfg.Runs),
		fmt.Sprintf("%d run(s) after a warm-up round of %d events; CPU per 1,000 events from /proc (journey process, redis-server, harness with NATS).", cfg.Runs, max(n/10, 1)),
	)
	return nil
}

// evalLeg is one leg of one round.
type evalLeg struct {
	res LoadResult
	cpu map[string]time.Duration
}

// round fills a batch of n bookings while journey is stopped, consumes
// it with the ceiling consumer, then starts journey and times it through
// the batch. It returns the two legs and how many timers journey planned.
func (b *evalBench) round(ctx context.Context, n int, meter cpuMeter) (ceil, sys evalLeg, planned int, err error) {
	if err := b.s.StopService("journey"); err != nil {
		return ceil, sys, 0, err
	}
	batch, err := b.fill(ctx, n)
	if err != nil {
		return ceil, sys, 0, err
	}
	if ceil, err = b.ceiling(ctx, batch, meter); err != nil {
		return ceil, sys, 0, err
	}
	ti, err := b.timers.Info(ctx)
	if err != nil {
		return ceil, sys, 0, err
	}
	// Watch journey's consumer from before the start: the timed part runs
	// from the first acknowledgement seen to the last, so journey's start
	// is not in it.
	type progress struct {
		t1, t2 time.Time
		floor1 uint64
		err    error
	}
	watched := make(chan progress, 1)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	before := meter.snapshot()
	go func() {
		var p progress
		limit := time.Now().Add(time.Minute + time.Duration(batch.count())*20*time.Millisecond)
		for {
			info, err := b.consumerInfo(wctx)
			now := time.Now()
			switch {
			case err != nil:
				p.err = err
			case p.t1.IsZero() && info.AckFloor.Stream >= batch.first:
				p.t1, p.floor1 = now, info.AckFloor.Stream
			}
			if err == nil && info.AckFloor.Stream >= batch.last && info.NumPending == 0 && info.NumAckPending == 0 {
				p.t2 = now
				p.err = nil
				watched <- p
				return
			}
			if now.After(limit) || wctx.Err() != nil {
				if p.err == nil {
					p.err = fmt.Errorf("journey acknowledged up to %d of %d–%d by %s (see %s)", info.AckFloor.Stream, batch.first, batch.last, limit.Format(time.TimeOnly), b.s.LogDir)
				}
				watched <- p
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	started := time.Now()
	if err := b.s.StartService(ctx, "journey"); err != nil {
		return ceil, sys, 0, err
	}
	p := <-watched
	if p.err != nil {
		return ceil, sys, 0, p.err
	}
	count, elapsed := int64(batch.last-p.floor1), p.t2.Sub(p.t1)
	if count <= 0 || elapsed <= 0 {
		// Done before a first acknowledgement was seen (tiny smoke
		// batches): time it from the start instead.
		count, elapsed = int64(batch.count()), p.t2.Sub(started)
	}
	after := meter.snapshot()
	// journey is a new process: all its CPU time is this round's (its start
	// included).
	if d, err := CPUTime(b.s.PID("journey")); err == nil {
		before["journey"], after["journey"] = 0, d
	}
	sys = evalLeg{res: LoadResult{Latency: &Histogram{}, Ops: count, Elapsed: elapsed}, cpu: per1k(before, after, int64(batch.count()))}
	// Timers are stored before the event is acknowledged.
	ti2, err := b.timers.Info(ctx)
	if err != nil {
		return ceil, sys, 0, err
	}
	planned = int(ti2.State.Msgs - ti.State.Msgs)
	// The first send step of every booking must have been decided by the
	// consent check (denied), and nothing sent.
	denied, err := metricSum(ctx, "http://"+b.s.Addrs["journey"]+"/metrics", "journey_sends_total", `outcome="no_consent"`)
	if err != nil {
		return ceil, sys, 0, err
	}
	switch {
	case planned < batch.booked:
		sys.res.Errors = int64(batch.booked - planned)
		sys.res.FirstErr = fmt.Errorf("journey planned %d timers for %d bookings (see %s)", planned, batch.booked, b.s.LogDir)
	case int(denied) != batch.booked:
		sys.res.Errors = int64(max(batch.booked-int(denied), 1))
		sys.res.FirstErr = fmt.Errorf("journey counted %.0f sends refused for no consent, want %d", denied, batch.booked)
	case len(b.s.Inbox.Messages()) > 0:
		sys.res.Errors = int64(len(b.s.Inbox.Messages()))
		sys.res.FirstErr = fmt.Errorf("%d emails reached the inbox; consent was denied", len(b.s.Inbox.Messages()))
	}
	return ceil, sys, planned, nil
}

// consumerInfo reads journey's consumer of EHR_EVENTS.
func (b *evalBench) consumerInfo(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	c, err := b.js.Consumer(ctx, bus.StreamEHREvents, evalDurable)
	if err != nil {
		return nil, err
	}
	return c.CachedInfo(), nil
}

// fill posts n bookings to ingest and returns the range of EHR_EVENTS
// they produced.
func (b *evalBench) fill(ctx context.Context, n int) (evalBatch, error) {
	si, err := b.events.Info(ctx)
	if err != nil {
		return evalBatch{}, err
	}
	batch := evalBatch{first: si.State.LastSeq + 1, booked: n}
	prefix := b.tags.next() + "f"
	anchor := time.Now().Truncate(time.Second).Add(48 * time.Hour)
	var next atomic.Int64
	var ec errCollector
	var wg sync.WaitGroup
	for range timerPublishers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := b.poster.Post(ctx, bookingAt(b.notes, prefix+fmt.Sprint(i), anchor.Add(time.Duration(i)*time.Second))); err != nil {
					ec.add(err)
				}
			}
		})
	}
	wg.Wait()
	if e, first := ec.get(); e > 0 {
		return batch, fmt.Errorf("fill: %d posts failed, first: %v", e, first)
	}
	// Ingest answers after the PubAck, so the events are in the stream.
	if si, err = b.events.Info(ctx); err != nil {
		return batch, err
	}
	batch.last = si.State.LastSeq
	if batch.count() < n {
		return batch, fmt.Errorf("fill: %d events on %s for %d bookings", batch.count(), bus.StreamEHREvents, n)
	}
	return batch, nil
}

// ceiling consumes the batch with a new durable consumer through
// bus.Consume and a handler that does nothing.
func (b *evalBench) ceiling(ctx context.Context, batch evalBatch, meter cpuMeter) (evalLeg, error) {
	name := "bench-ceiling-" + b.tags.next()
	want := int64(batch.count())
	var got atomic.Int64
	done := make(chan struct{})
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	before := meter.snapshot()
	start := time.Now()
	var last time.Time
	errc := make(chan error, 1)
	go func() {
		errc <- bus.Consume(cctx, b.js, bus.StreamEHREvents, jetstream.ConsumerConfig{
			Durable: name, FilterSubject: "ehr.>", DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
			OptStartSeq: batch.first, AckWait: 30 * time.Second,
		}, slog.New(slog.DiscardHandler), func(ctx context.Context, m jetstream.Msg) error {
			if md, err := m.Metadata(); err == nil && md.Sequence.Stream <= batch.last {
				if got.Add(1) == want {
					// The handler returns, then bus.Consume acknowledges;
					// the next message's arrival would be later still.
					defer func() { last = time.Now(); close(done) }()
				}
			}
			return nil
		})
	}()
	limit := time.Minute + time.Duration(want)*time.Millisecond
	select {
	case <-done:
	case err := <-errc:
		return evalLeg{}, fmt.Errorf("ceiling consumer: %v", err)
	case <-time.After(limit):
		return evalLeg{}, fmt.Errorf("ceiling consumed %d of %d events in %s", got.Load(), want, limit)
	case <-ctx.Done():
		return evalLeg{}, ctx.Err()
	}
	after := meter.snapshot()
	cancel()
	<-errc
	// The last handler call returned before `last` was taken; its ack is
	// in flight, as journey's would be when its consumer shows no pending.
	elapsed := last.Sub(start)
	if err := b.js.DeleteConsumer(ctx, bus.StreamEHREvents, name); err != nil {
		return evalLeg{}, err
	}
	return evalLeg{res: LoadResult{Latency: &Histogram{}, Ops: want, Elapsed: elapsed}, cpu: per1k(before, after, want)}, nil
}

// denyConsent records, through journey's admin API, that patient denied
// email for treatment.
func denyConsent(ctx context.Context, journeyURL, patient string) error {
	url := journeyURL + "/v1/consent/" + stack.DemoTenant + "/" + patient + "/email/treatment"
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader(`{"state":"denied","source":"admin","evidenceRef":"bench"}`))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+stack.DevAdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("set consent: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("set consent: journey answered %d", resp.StatusCode)
	}
	return nil
}

// metricSum adds up the samples of a Prometheus metric whose labels
// contain every one of labels, from the text exposition at url.
func metricSum(ctx context.Context, url, name string, labels ...string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, fmt.Errorf("read metrics: %w", err)
	}
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		lbl, val, ok := strings.Cut(line[len(name):], "} ")
		if !ok || !containsAll(lbl, labels) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", name, err)
		}
		sum += v
	}
	return sum, nil
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
