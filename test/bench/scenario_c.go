package bench

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/carenotify/carenotify/deploy/devstack/devca"
	"github.com/carenotify/carenotify/deploy/devstack/inbox"
	"github.com/carenotify/carenotify/deploy/devstack/stack"
	"github.com/carenotify/carenotify/pkg/grpcx"
	emailv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/email/v1"
)

// Scenario c's sizes.
const (
	channelSends   = 50000
	channelSmoke   = 500
	channelWorkers = 20
	channelSenders = 32
	channelSubject = "Your appointment reminder"
	channelBody    = "Hello,\r\n\r\nThis is a reminder of your appointment at the clinic tomorrow at 09:30.\r\nPlease arrive ten minutes early. Reply to this message if you need to reschedule.\r\n\r\nThe clinic team\r\n"
	// channelIdle is the email service's EMAIL_SMTP_IDLE_TIMEOUT here.
	channelIdle = 2 * time.Second
)

// EmailChannel is scenario c: Listmonk sending a campaign to n
// recipients (the ceiling, when a build is found at cfg.ListmonkBin), then
// n sends through the email service's gRPC Send, both to the same SMTP
// sink over STARTTLS with 20 connections. Both legs are pre-queued: all n
// messages wait (Listmonk's subscribers in its database, the email
// service's sends in its JetStream work queue) before delivery may start,
// and both are timed at the sink.
func EmailChannel(ctx context.Context, cfg Config) *Scenario {
	sc := &Scenario{ID: "c", Title: "email channel: 50,000 pre-queued sends → SMTP sink (STARTTLS), 20 connections"}
	n := channelSends
	if cfg.Smoke {
		n = channelSmoke
	}
	sink, err := startChannelSink(filepath.Join(cfg.TmpDir, "scenario-c"))
	if err != nil {
		sc.Status = "failed: " + err.Error()
		return sc
	}
	defer sink.close()
	var failed []string
	if fi, err := os.Stat(cfg.ListmonkBin); cfg.ListmonkBin == "" || err != nil || fi.IsDir() {
		sc.Notes = append(sc.Notes, "Ceiling skipped: no Listmonk build found at $LISTMONK_BIN (point LISTMONK_BIN at a Listmonk build, see test/bench/doc.go); no ratio.")
	} else if err := runListmonkLeg(ctx, cfg, sink, sc, n); err != nil {
		failed = append(failed, "Listmonk leg: "+err.Error())
	}
	if ctx.Err() != nil {
		return sc
	}
	if err := runChannel(ctx, cfg, sink, sc, n); err != nil {
		failed = append(failed, "system leg: "+err.Error())
	}
	if len(failed) > 0 {
		sc.Status = "failed: " + strings.Join(failed, "; ")
	}
	return sc
}

// channelSink is scenario c's SMTP sink: the development inbox's SMTP
// server with STARTTLS required, on a loopback port both legs use, behind
// a listener that can hold new connections (accepted by the kernel, not
// greeted) until delivery is released.
type channelSink struct {
	inbox *inbox.Inbox
	ca    *devca.CA
	gate  *gatedListener
	port  int
	srv   interface{ Close() error }
}

func startChannelSink(varDir string) (*channelSink, error) {
	ca, err := devca.Ensure(filepath.Join(varDir, "certs"), []string{"localhost", "127.0.0.1", "::1"})
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	in := inbox.New()
	g := newGatedListener(l)
	srv := in.NewSMTPServer(l.Addr().String(), ca.ServerTLS, true, nil)
	go func() { _ = srv.Serve(g) }()
	return &channelSink{inbox: in, ca: ca, gate: g, port: l.Addr().(*net.TCPAddr).Port, srv: srv}, nil
}

func (s *channelSink) close() {
	s.gate.Close()
	_ = s.srv.Close()
}

// gatedListener hands accepted connections to the server only while open.
type gatedListener struct {
	net.Listener
	mu     sync.Mutex
	open   chan struct{} // closed while the gate is open
	closed chan struct{}
	once   sync.Once
}

func newGatedListener(l net.Listener) *gatedListener {
	g := &gatedListener{Listener: l, open: make(chan struct{}), closed: make(chan struct{})}
	close(g.open)
	return g
}

// hold keeps new connections waiting until release.
func (g *gatedListener) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		g.open = make(chan struct{})
	default:
	}
}

// release lets held and new connections through.
func (g *gatedListener) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

func (g *gatedListener) Accept() (net.Conn, error) {
	c, err := g.Listener.Accept()
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
		return c, nil
	case <-g.closed:
		_ = c.Close()
		return nil, net.ErrClosed
	}
}

func (g *gatedListener) Close() error {
	g.once.Do(func() { close(g.closed) })
	return g.Listener.Close()
}

// sinkCount counts the messages the sink stores for recipients with a
// prefix, keeping every store time.
type sinkCount struct {
	mu          sync.Mutex
	first, last time.Time
	times       []time.Time
	got         int
	bytes       int64
	notTLS      int
	dkim        map[string]int // DKIM check results
	sample      inbox.Message
	all         chan struct{}
}

// watchArrivals counts until ctx is done; all closes at want messages.
func watchArrivals(ctx context.Context, in *inbox.Inbox, prefix string, want int) *sinkCount {
	a := &sinkCount{all: make(chan struct{}), dkim: map[string]int{}}
	go func() {
		_, _ = in.Wait(ctx, func(m inbox.Message) bool {
			if len(m.To) != 1 || !strings.HasPrefix(m.To[0], prefix) {
				return false
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.got == 0 {
				a.sample = m
			}
			if a.first.IsZero() || m.ReceivedAt.Before(a.first) {
				a.first = m.ReceivedAt
			}
			if m.ReceivedAt.After(a.last) {
				a.last = m.ReceivedAt
			}
			a.got++
			a.times = append(a.times, m.ReceivedAt)
			a.bytes += int64(m.Size)
			if !m.TLS {
				a.notTLS++
			}
			a.dkim[m.DKIM]++
			if a.got == want {
				close(a.all)
			}
			return false
		})
	}()
	return a
}

// snapshot returns the count and the first and last store times.
func (a *sinkCount) snapshot() (got int, first, last time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.got, a.first, a.last
}

// throughput is (messages − 1) / (last − first).
func (a *sinkCount) throughput() float64 {
	got, f, l := a.snapshot()
	if got < 2 || !l.After(f) {
		return 0
	}
	return float64(got-1) / l.Sub(f).Seconds()
}

// describe says what arrived: size, TLS, whether the text is the body.
func (a *sinkCount) describe() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.got == 0 {
		return "nothing arrived"
	}
	same := "the sink's decoded text/plain part is the scenario's body"
	if strings.TrimSpace(a.sample.Text) != strings.TrimSpace(strings.ReplaceAll(channelBody, "\r\n", "\n")) {
		same = "the sink's decoded text differs from the scenario's body"
	}
	tls := "all over STARTTLS (" + a.sample.TLSVersion + ")"
	if a.notTLS > 0 {
		tls = fmt.Sprintf("%d not over TLS", a.notTLS)
	}
	var dk []string
	for _, r := range slices.Sorted(maps.Keys(a.dkim)) {
		name := r
		if r == "" {
			name = "not checked"
		}
		dk = append(dk, fmt.Sprintf("%s %d", name, a.dkim[r]))
	}
	return fmt.Sprintf("%s bytes per message as received on average, %s, DKIM at the sink: %s; %s", fmtCount(float64(a.bytes)/float64(a.got)), tls, strings.Join(dk, ", "), same)
}

// waitArrivals waits for every message, the limit, or (with check) a
// verdict that no more will come.
func waitArrivals(ctx context.Context, a *sinkCount, limit time.Duration, check func() error) error {
	timeout := time.After(limit)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-a.all:
			return nil
		case <-timeout:
			got, _, _ := a.snapshot()
			return fmt.Errorf("%d messages arrived within %s", got, limit)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if check != nil {
				if err := check(); err != nil {
					return err
				}
			}
		}
	}
}

func runListmonkLeg(ctx context.Context, cfg Config, sink *channelSink, sc *Scenario, n int) error {
	cfg.logf("c: ceiling, starting PostgreSQL and Listmonk (%s)", cfg.ListmonkBin)
	lm, err := StartListmonk(ctx, cfg.ListmonkBin, filepath.Join(cfg.TmpDir, "scenario-c", "listmonk"), ListmonkSMTP{
		Host: "localhost", Port: sink.port, CAFile: sink.ca.CAFile, Conns: channelWorkers,
	})
	if err != nil {
		return err
	}
	defer lm.Stop()
	lmPID, pgPID := lm.PIDs()
	meter := func() map[string]time.Duration {
		self, _ := CPUTime(0)
		return map[string]time.Duration{"listmonk": TreeCPUTime(lmPID), "postgres": TreeCPUTime(pgPID), "harness": self}
	}
	tags := newRunTags()
	limit := 10 * time.Minute
	if cfg.Smoke {
		limit = 2 * time.Minute
	}
	// One campaign per run, each to its own list of n new subscribers.
	var (
		runs []sinkRun
		last *sinkCount
	)
	for run := range cfg.Runs {
		prefix := tags.next() + "l"
		id, err := lm.PrepareCampaign(ctx, prefix, n, channelSubject, channelBody)
		if err != nil {
			return err
		}
		watchCtx, stop := context.WithCancel(ctx)
		arr := watchArrivals(watchCtx, sink.inbox, "bench."+prefix, n)
		cfg.logf("c: ceiling, run %d/%d, Listmonk campaign to %d subscribers, %d connections", run+1, cfg.Runs, n, channelWorkers)
		cpu0 := meter()
		start := time.Now()
		if err := lm.StartCampaign(ctx, id); err != nil {
			stop()
			return err
		}
		var finishedAt time.Time
		err = waitArrivals(ctx, arr, limit, func() error {
			st, sent, err := lm.CampaignStatus(ctx, id)
			if err != nil || (st != "finished" && st != "cancelled" && st != "paused") {
				return nil
			}
			if finishedAt.IsZero() {
				finishedAt = time.Now()
			}
			if time.Since(finishedAt) > 10*time.Second {
				got, _, _ := arr.snapshot()
				return fmt.Errorf("campaign %s (Listmonk counts %d sent), %d of %d messages at the sink", st, sent, got, n)
			}
			return nil
		})
		cpu1 := meter()
		stop()
		if err != nil {
			return err
		}
		runs = append(runs, arr.run(start, per1k(cpu0, cpu1, int64(n))))
		last = arr
	}
	lmRSS, pgPSS := procRSS(lmPID), TreePSS(pgPID)
	row := sinkRow("ceiling", fmt.Sprintf("Listmonk campaign, %s subscribers, %d SMTP connections", fmtCount(float64(n)), channelWorkers), n, runs)
	row.HistName = "campaign started → message stored by the sink, per message (Listmonk's manager scans for running campaigns every 5 s, so its first message comes seconds after the start)"
	sc.Rows = append(sc.Rows, row)
	sc.Ceiling = Figure{Value: row.Throughput, Unit: "messages/s", What: "Listmonk " + listmonkVersion(lm.Version) + ", first to last message stored by the sink"}
	first, lastAt := medianFirstLast(runs)
	sc.Latency = fmt.Sprintf("Listmonk: %s from the campaign's start, time to first message %s (its manager scans for running campaigns every 5 s), last at %s",
		row.Percentiles(), first.Round(time.Millisecond), lastAt.Round(time.Millisecond))
	cpuS := func(k string) float64 { return row.CPU[k].Seconds() * 10 }
	sc.Notes = append(sc.Notes,
		fmt.Sprintf("Ceiling: %s (LISTMONK_BIN) on a throwaway PostgreSQL (%s; fresh cluster in a temporary directory, default server settings, unix socket only, run as an unprivileged user since the harness runs as root). Its schema is installed with `--install --yes`; before it serves, the harness writes its settings into the settings table: one SMTP server at the same sink (localhost:%d, STARTTLS verified against the development CA via SSL_CERT_FILE, no AUTH, max_conns %d), app.concurrency %d, app.message_rate %d (Listmonk's per-worker count before a one-second pause, above any worker's share, so no rate limit applies), other settings (batch_size 1,000, sliding window off) at their defaults.",
			listmonkVersion(lm.Version), lm.pg.bin, sink.port, channelWorkers, channelWorkers, listmonkMessageRate),
		fmt.Sprintf("Per run, a new list, a campaign template that is the content alone ({{ template \"content\" . }}) and a plain-text campaign with the same subject and %d-byte body as the system leg go through Listmonk's API; the run's %s subscribers are inserted with one SQL statement beforehand (not timed). The campaign is started with PUT /api/campaigns/{id}/status.", len(channelBody), fmtCount(float64(n))),
		fmt.Sprintf("Ceiling: %s (last run). Listmonk %.2f CPU s per 10k messages, PostgreSQL %.2f (all its processes, exited backends included), the harness (the sink) %.2f, from the campaign's start to the last message (medians over the runs); RSS Listmonk %s (VmRSS), PostgreSQL %s (sum of Pss over its processes) at the end.",
			last.describe(), cpuS("listmonk"), cpuS("postgres"), cpuS("harness"), fmtBytes(lmRSS), fmtBytes(pgPSS)),
	)
	return nil
}

// sinkRun is what one run of scenario c measured at the sink.
type sinkRun struct {
	// tput is (messages − 1) / (last − first store time).
	tput float64
	// lat holds, per message, the time from the run's start (delivery
	// released, campaign started) to the sink storing it.
	lat *Histogram
	// first and last are the first and last store times from the start.
	first, last time.Duration
	// cpu is per process per 1,000 messages, from the start to the last.
	cpu map[string]time.Duration
}

// run summarises what arrived, timed from start.
func (a *sinkCount) run(start time.Time, cpu map[string]time.Duration) sinkRun {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := sinkRun{lat: &Histogram{}, cpu: cpu, first: a.first.Sub(start), last: a.last.Sub(start)}
	for _, t := range a.times {
		r.lat.Record(t.Sub(start))
	}
	if a.got >= 2 && a.last.After(a.first) {
		r.tput = float64(a.got-1) / a.last.Sub(a.first).Seconds()
	}
	return r
}

// sinkRow summarises scenario c's runs of one leg: the median throughput,
// the median of each run's percentiles and the merged histogram, as
// Summarize does for load runs.
func sinkRow(leg, load string, n int, runs []sinkRun) Row {
	var (
		lr   []LoadResult
		tput []float64
		cpus []map[string]time.Duration
	)
	for _, r := range runs {
		lr = append(lr, LoadResult{Latency: r.lat, Ops: int64(n)})
		tput = append(tput, r.tput)
		cpus = append(cpus, r.cpu)
	}
	row := Summarize(leg, load, lr)
	row.Throughput, row.CPU = Median(tput), medianCPU(cpus)
	return row
}

// medianFirstLast returns the median time to the first and to the last
// message over the runs.
func medianFirstLast(runs []sinkRun) (first, last time.Duration) {
	var f, l []time.Duration
	for _, r := range runs {
		f, l = append(f, r.first), append(l, r.last)
	}
	return Median(f), Median(l)
}

// listmonkVersion returns the version token of `listmonk --version`.
func listmonkVersion(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return "(version unknown)"
}

func runChannel(ctx context.Context, cfg Config, sink *channelSink, sc *Scenario, n int) error {
	varDir := filepath.Join(cfg.TmpDir, "scenario-c")
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	grpcAddr := gl.Addr().String()
	_ = gl.Close()

	cfg.logf("c: starting the stack (builds the services)")
	s, err := stack.Start(ctx, stack.Options{
		Root: cfg.Root, VarDir: varDir, FreePorts: true,
		ExtraEnv: map[string][]string{"email": {
			"EMAIL_SMTP_PORT=" + strconv.Itoa(sink.port),
			"EMAIL_SMTP_CA_FILE=" + sink.ca.CAFile,
			"EMAIL_WORKERS=" + strconv.Itoa(channelWorkers),
			"EMAIL_GRPC_ADDR=" + grpcAddr,
			// The first deliveries wait at the held sink while the sends
			// are queued; one attempt (and the ack wait) must outlast that.
			"EMAIL_SEND_TIMEOUT=10m",
			// Sessions left from one run close before the next holds the
			// sink (it holds new connections only); within a run they are
			// never idle that long.
			"EMAIL_SMTP_IDLE_TIMEOUT=" + channelIdle.String(),
		}},
	})
	if err != nil {
		return err
	}
	defer s.Stop()
	// The email service signs with the stack's development DKIM key; the
	// harness's sink checks signatures with its public half.
	sink.inbox.SetDKIMKeys(s.Inbox.DKIMKeys())
	procs := Children()
	pid, redisPID := procs["email"], procs["redis-server"]

	tag := newRunTags().next()
	cc, err := grpcx.NewClient(grpcAddr, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	defer cc.Close()
	email := emailv1.NewEmailServiceClient(cc)
	send := func(ctx context.Context, id, to string) error {
		_, err := email.Send(ctx, &emailv1.SendRequest{
			Tenant: stack.DemoTenant, IdempotencyKey: "bench-c-" + id, To: to,
			Subject: channelSubject, TextBody: channelBody, Security: emailv1.Security_SECURITY_NO_PHI,
			ExpiresAt: timestamppb.New(time.Now().Add(time.Hour)),
		})
		return err
	}
	// Wait until gRPC answers (the stack's readiness is HTTP's) with a
	// send the service refuses (no recipient), so nothing is delivered.
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		err := send(pctx, tag+"p", "")
		if status.Code(err) == codes.InvalidArgument {
			break
		}
		if pctx.Err() != nil {
			return fmt.Errorf("probe Send: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	meter := func() map[string]time.Duration {
		self, _ := CPUTime(0)
		e, _ := CPUTime(pid)
		m := map[string]time.Duration{"email": e, "harness": self}
		if redisPID > 0 {
			m["redis"] = TreeCPUTime(redisPID)
		}
		return m
	}
	var (
		runs     []sinkRun
		queueCPU []map[string]time.Duration
		queued   []time.Duration
		last     *sinkCount
	)
	for run := range cfg.Runs {
		r, arr, err := channelRun(ctx, cfg, sink, send, meter, n, tag+strconv.Itoa(run)+"x", run)
		if err != nil {
			return err
		}
		runs, queueCPU, queued = append(runs, r.sinkRun), append(queueCPU, r.queueCPU), append(queued, r.queued)
		last = arr
	}
	rss := procRSS(pid)
	row := sinkRow("system", fmt.Sprintf("%s pre-queued gRPC Sends, EMAIL_WORKERS=%d", fmtCount(float64(n)), channelWorkers), n, runs)
	row.HistName = "delivery released → message stored by the sink, per message (every Send was accepted before the release)"
	sc.Rows = append(sc.Rows, row)
	sc.System = Figure{Value: row.Throughput, Unit: "messages/s", What: "first to last message stored by the sink"}
	first, lastAt := medianFirstLast(runs)
	lat := fmt.Sprintf("carenotify: %s from the release, time to first message %s, last at %s; the %s Sends were accepted in %s before",
		row.Percentiles(), first.Round(time.Millisecond), lastAt.Round(time.Millisecond), fmtCount(float64(n)), Median(queued).Round(time.Millisecond))
	if sc.Latency != "" {
		lat = sc.Latency + "; " + lat
	}
	sc.Latency = lat
	q := medianCPU(queueCPU)
	cpuS := func(m map[string]time.Duration, k string) float64 { return m[k].Seconds() * 10 }
	sc.Notes = append(sc.Notes,
		"Both legs are pre-queued and timed the same way, at the sink: throughput is (messages − 1) / (last − first) sink store time. The system leg's Sends are all accepted while the sink holds new connections (its listener accepts them but does not greet until released), so the email service's workers start delivering only when the harness releases the sink; time to first message and the latency histogram are from that release.",
		fmt.Sprintf("Each leg runs %d time(s) back to back, without a warm-up run (a run is %s messages); figures are medians over the runs, the histogram merges them. The system leg's runs share one stack, each run with new idempotency keys and recipients.", cfg.Runs, fmtCount(float64(n))),
		fmt.Sprintf("The development stack runs (stack.Start, FreePorts) with email given EMAIL_WORKERS=%d, its own EMAIL_GRPC_ADDR, EMAIL_SEND_TIMEOUT=10m (the first deliveries wait at the held sink; the default 30 s would expire them), EMAIL_SMTP_IDLE_TIMEOUT=%s (so no session of one run is still open when the next holds the sink; the harness waits that long plus 1 s between runs) and the harness's sink (the development inbox's SMTP server with STARTTLS, as in scenario b); SMTP sessions are kept open by the workers (up to 100 messages each). NATS JetStream (the email service's work queue) runs inside the harness process.", channelWorkers, channelIdle),
		fmt.Sprintf("%d callers invoke carenotify.email.v1.EmailService/Send with the generated client over plaintext gRPC on loopback, distinct idempotency keys and recipients, the same %d-byte text body and subject for every message, security NO_PHI.", channelSenders, len(channelBody)),
		fmt.Sprintf("System: %s (last run). Email process %.2f CPU s per 10k messages delivering (from the release to the last message; the table's CPU column), %.2f queueing the Sends; redis-server (idempotency keys, delivery records, locks) %.2f delivering, %.2f queueing; the harness (sink, NATS, gRPC callers) %.2f delivering (medians over the runs); email RSS %s at the end (VmRSS), redis-server %s.",
			last.describe(), cpuS(row.CPU, "email"), cpuS(q, "email"), cpuS(row.CPU, "redis"), cpuS(q, "redis"),
			cpuS(row.CPU, "harness"), fmtBytes(rss), fmtBytes(procRSS(redisPID))),
	)
	return nil
}

// channelResult is one run of scenario c's system leg.
type channelResult struct {
	sinkRun
	// queued is how long the n Sends took to be accepted; queueCPU the
	// CPU per 1,000 Sends meanwhile.
	queued   time.Duration
	queueCPU map[string]time.Duration
}

// channelRun pre-queues n Sends (recipients and keys from prefix) while
// the sink holds connections, releases it and waits for every message.
func channelRun(ctx context.Context, cfg Config, sink *channelSink, send func(ctx context.Context, id, to string) error,
	meter func() map[string]time.Duration, n int, prefix string, run int) (channelResult, *sinkCount, error) {
	// Pre-queue: hold the sink's new connections (the workers' dials
	// complete in the kernel's backlog, the greeting waits) while every
	// Send is accepted, then release them and time the delivery. The
	// sessions of the previous run must be gone first (the sink holds only
	// new connections): the email service closes them after channelIdle.
	if run > 0 {
		select {
		case <-time.After(channelIdle + time.Second):
		case <-ctx.Done():
			return channelResult{}, nil, ctx.Err()
		}
	}
	sink.gate.hold()
	defer sink.gate.release()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	arr := watchArrivals(watchCtx, sink.inbox, "bench."+prefix, n)
	cfg.logf("c: system, run %d/%d, %d sends over gRPC from %d callers while the sink holds connections, EMAIL_WORKERS=%d", run+1, cfg.Runs, n, channelSenders, channelWorkers)
	cpu0 := meter()
	var (
		next     atomic.Int64
		errs     atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range channelSenders {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				if i > n || ctx.Err() != nil {
					return
				}
				id := prefix + strconv.Itoa(i)
				if err := send(ctx, id, RecipientFor(id)); err != nil {
					if errs.Add(1) == 1 {
						firstErr.Store(err.Error())
					}
				}
			}
		})
	}
	wg.Wait()
	res := channelResult{queued: time.Since(start)}
	if e := errs.Load(); e > 0 {
		return res, nil, fmt.Errorf("%d Send errors, first: %v", e, firstErr.Load())
	}
	if got, _, _ := arr.snapshot(); got > 0 {
		return res, nil, fmt.Errorf("%d messages reached the sink while it held connections", got)
	}
	cpu1 := meter()
	res.queueCPU = per1k(cpu0, cpu1, int64(n))
	released := time.Now()
	sink.gate.release()
	limit := 10 * time.Minute
	if cfg.Smoke {
		limit = time.Minute
	}
	if err := waitArrivals(ctx, arr, limit, nil); err != nil {
		return res, nil, err
	}
	res.sinkRun = arr.run(released, per1k(cpu1, meter(), int64(n)))
	return res, arr, nil
}

// procRSS returns a process's VmRSS in bytes, or 0 where unknown.
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
