package bench

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/bus/embedded"
	"github.com/carenotify/carenotify/pkg/store/redisproc"
)

// Loads of scenario a.
const (
	ceilingClients = 16
	// openWorkers bounds an open loop's requests in flight: the largest
	// closed loop, so the open loop never has more concurrency than was
	// measured.
	openWorkers = 64
)

var (
	closedClients = []int{16, 64}
	openFractions = []float64{0.25, 0.50, 0.75}
)

// eventSubject is where ingest publishes a booked appointment of the demo
// tenant.
const eventSubject = "ehr.demo.appointment.booked"

// Ingest runs scenario a (syncAlways false) or a′ (true): FHIR full-resource
// notifications posted to an ingest process, which answers 200 after
// JetStream acknowledged the event, against the ceiling of JetStream sync
// publishes of the same event size to the same server.
func Ingest(ctx context.Context, cfg Config, ingestBin string, syncAlways bool) *Scenario {
	sc := &Scenario{ID: "a", Title: "FHIR full-resource and id-only notifications → ingest → durable publish → 200"}
	if syncAlways {
		sc.ID = "a′"
		sc.Title = "scenario a with JetStream `sync_interval: always` (fsync before every ack)"
	}
	if err := runIngest(ctx, cfg, ingestBin, syncAlways, sc); err != nil {
		sc.Status = "failed: " + err.Error()
	}
	return sc
}

// ingestBench is an ingest process against the harness's own embedded
// NATS server, with an admin connection to its EHR_EVENTS stream.
type ingestBench struct {
	url     string
	ing     *IngestProc
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	closers []func()
}

// startIngestBench starts NATS (file storage under dir) and ingest, with
// extraEnv beside the demo configuration.
func startIngestBench(ctx context.Context, ingestBin, dir string, syncAlways bool, extraEnv ...string) (_ *ingestBench, err error) {
	b := &ingestBench{}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	ns, err := embedded.Start(embedded.Options{Port: -1, StoreDir: filepath.Join(dir, "nats"), SyncAlways: syncAlways})
	if err != nil {
		return nil, err
	}
	b.url = ns.ClientURL()
	b.closers = append(b.closers, func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	rs, err := redisproc.Start(ctx, redisproc.Options{Dir: filepath.Join(dir, "redis")})
	if err != nil {
		return nil, err
	}
	b.closers = append(b.closers, rs.Stop)
	if b.ing, err = StartIngest(ctx, ingestBin, ns.ClientURL(), rs.URL, filepath.Join(dir, "ingest.log"), extraEnv...); err != nil {
		return nil, err
	}
	b.closers = append(b.closers, b.ing.Stop)
	if b.nc, err = nats.Connect(ns.ClientURL(), nats.Name("bench-admin")); err != nil {
		return nil, fmt.Errorf("connect nats: %w", err)
	}
	b.closers = append(b.closers, b.nc.Close)
	if b.js, err = jetstream.New(b.nc); err != nil {
		return nil, err
	}
	if b.stream, err = b.js.Stream(ctx, bus.StreamEHREvents); err != nil {
		return nil, fmt.Errorf("ingest declared no %s: %w", bus.StreamEHREvents, err)
	}
	return b, nil
}

// purge empties EHR_EVENTS, so that every run starts from the same state.
func (b *ingestBench) purge(ctx context.Context) error {
	if err := b.stream.Purge(ctx); err != nil {
		return fmt.Errorf("purge %s: %w", bus.StreamEHREvents, err)
	}
	return nil
}

// events returns how many messages EHR_EVENTS holds.
func (b *ingestBench) events(ctx context.Context) (uint64, error) {
	info, err := b.stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// Close stops everything, last started first.
func (b *ingestBench) Close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

func runIngest(ctx context.Context, cfg Config, ingestBin string, syncAlways bool, sc *Scenario) error {
	dir := filepath.Join(cfg.TmpDir, "scenario-"+map[bool]string{false: "a", true: "a-sync-always"}[syncAlways])
	notes, err := LoadNotifications(cfg.Root)
	if err != nil {
		return err
	}
	// id-only notifications: ingest fetches each focus Appointment from a
	// local stand-in FHIR server with SMART Backend Services auth.
	idOnly, appt, err := notes.IDOnly()
	if err != nil {
		return err
	}
	fhir, err := StartFHIRServer(filepath.Join(dir, "fhir"), appt)
	if err != nil {
		return err
	}
	defer fhir.Close()
	env, err := startIngestBench(ctx, ingestBin, dir, syncAlways, "INGEST_FHIR_SERVERS_FILE="+fhir.ServersFile)
	if err != nil {
		return err
	}
	defer env.Close()
	ing, stream, purge := env.ing, env.stream, env.purge
	tags := newRunTags()
	poster := NewPoster(ing.URL, openWorkers)
	defer poster.Close()

	// Probe: one notification, to learn the size of the event ingest
	// publishes, so the ceiling publishes the same.
	probeID := tags.next() + "x0"
	if err := poster.Post(ctx, notes.Body(probeID)); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	ev, err := stream.GetLastMsgForSubject(ctx, eventSubject)
	if err != nil {
		return fmt.Errorf("probe: read the event: %w", err)
	}
	hdrBytes := 0
	for k, vs := range ev.Header {
		for _, v := range vs {
			hdrBytes += len(k) + len(v) + 4
		}
	}
	sc.Notes = append(sc.Notes,
		fmt.Sprintf("Notification body %d bytes (deploy/examples/notifications/appointment-booked.json through demo.NewBooking, a unique appointment, patient and email per request); the event ingest publishes is %d bytes of data and %d bytes of headers, and the ceiling publishes the same data and headers with its own Nats-Msg-Id.", notes.Size(len(probeID)), len(ev.Data), hdrBytes),
		fmt.Sprintf("id-only rows: the same notification with the status entry only (%d bytes), its focus a literal Appointment/<id>; ingest fetches each Appointment from a stand-in FHIR server in the harness process (loopback HTTP, SMART Backend Services: an ES384 private_key_jwt assertion checked by the server, the access token cached by ingest) before it maps, seals and publishes the event; the Patient is not fetched (ingest reads only its id from the reference).", idOnly.Size(len(probeID))),
		"Ingest runs alone against the harness's embedded NATS server (no journey or email consuming the events), with a development keyring and audit keys made as the development stack makes them; EHR_EVENTS is purged before every run, ceiling and system alike (AUDIT refuses purges and grows).",
		"Per notification ingest seals the event (pkg/envelope) and makes two durable JetStream writes before answering: the event, and an audit record (pkg/audit) appended to the tenant's hash chain under the chain's lock, so audit appends of one tenant are serialised; the ceiling is one publish per operation. The 1-client ceiling row shows the rate of such a serialised chain.",
		fmt.Sprintf("Runs of %s after a %s warm-up.", cfg.RunTime, cfg.WarmUp),
	)

	// Ceiling: JetStream sync publish from 16 connections.
	cfg.logf("%s: ceiling, JetStream publish, %d clients", sc.ID, ceilingClients)
	pubs := make(chan jetstream.JetStream, ceilingClients)
	for range ceilingClients {
		c, err := nats.Connect(env.url, nats.Name("bench-ceiling"))
		if err != nil {
			return fmt.Errorf("connect nats: %w", err)
		}
		defer c.Close()
		cjs, err := jetstream.New(c)
		if err != nil {
			return err
		}
		pubs <- cjs
	}
	harness := series{cfg: cfg, meter: cpuMeter{"harness": 0}, before: purge}
	ceilTag := tags.next()
	publish := func(ctx context.Context, seq int64) error {
		cjs := <-pubs
		defer func() { pubs <- cjs }()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		msg := &nats.Msg{Subject: eventSubject, Data: ev.Data, Header: maps.Clone(ev.Header)}
		msg.Header.Del(jetstream.MsgIDHeader)
		_, err := cjs.PublishMsg(ctx, msg, jetstream.WithMsgID(fmt.Sprintf("ceiling-%s-%d", ceilTag, seq)))
		return err
	}
	runs, cpu, err := harness.run(ctx, true, func(ctx context.Context, d time.Duration) LoadResult {
		return ClosedLoop(ctx, ceilingClients, d, publish)
	})
	if err != nil {
		return err
	}
	ceil := Summarize("ceiling", fmt.Sprintf("JetStream sync publish, closed, %d clients", ceilingClients), runs)
	ceil.CPU, ceil.HistName = cpu, "publish → PubAck latency (service time)"
	sc.Rows = append(sc.Rows, ceil)
	sc.Ceiling = Figure{Value: ceil.Throughput, Unit: "publishes/s", What: fmt.Sprintf("JetStream sync publish, %d clients", ceilingClients)}

	// One client: the rate of anything that waits for each PubAck before
	// the next publish, such as one audit chain.
	runs, cpu, err = harness.run(ctx, false, func(ctx context.Context, d time.Duration) LoadResult {
		return ClosedLoop(ctx, 1, d, publish)
	})
	if err != nil {
		return err
	}
	one := Summarize("ceiling", "JetStream sync publish, closed, 1 client (for reference)", runs)
	one.CPU, one.HistName = cpu, "publish → PubAck latency (service time)"
	sc.Rows = append(sc.Rows, one)

	// System leg.
	system := series{cfg: cfg, meter: cpuMeter{"ingest": ing.Pid, "harness": 0}, before: purge}
	post := func(tag string) Op {
		return func(ctx context.Context, seq int64) error {
			return poster.Post(ctx, notes.Body(fmt.Sprintf("%sx%d", tag, seq)))
		}
	}
	var maxTput float64
	for i, clients := range closedClients {
		cfg.logf("%s: system, closed loop, %d clients", sc.ID, clients)
		runs, cpu, err := system.run(ctx, i == 0, func(ctx context.Context, d time.Duration) LoadResult {
			return ClosedLoop(ctx, clients, d, post(tags.next()))
		})
		if err != nil {
			return err
		}
		row := Summarize("system", fmt.Sprintf("closed, %d clients", clients), runs)
		row.CPU, row.HistName = cpu, "POST → 200 latency (service time)"
		sc.Rows = append(sc.Rows, row)
		maxTput = max(maxTput, row.Throughput)
		if clients == ceilingClients {
			sc.System = Figure{Value: row.Throughput, Unit: "notifications/s", What: fmt.Sprintf("%d clients", clients)}
		}
	}
	for _, f := range openFractions {
		rate := f * maxTput
		cfg.logf("%s: system, open loop, %.0f/s", sc.ID, rate)
		runs, cpu, err := system.run(ctx, false, func(ctx context.Context, d time.Duration) LoadResult {
			return OpenLoop{Rate: rate, Duration: d, Workers: openWorkers}.Run(ctx, post(tags.next()))
		})
		if err != nil {
			return err
		}
		row := Summarize("system", fmt.Sprintf("open, %.0f%% of max = %s/s", f*100, fmtCount(rate)), runs)
		row.CPU, row.HistName = cpu, "POST → 200 latency from the planned send time"
		sc.Rows = append(sc.Rows, row)
		if f == 0.50 {
			sc.Latency = row.Percentiles() + " (open loop at 50% of max)"
		}
	}
	idTput, err := runIDOnly(ctx, cfg, sc, system, func(tag string) Op {
		return func(ctx context.Context, seq int64) error {
			return poster.Post(ctx, idOnly.Body(fmt.Sprintf("%sx%d", tag, seq)))
		}
	}, tags)
	if err != nil {
		return err
	}
	tokens, reads, refused := fhir.Counts()
	if refused > 0 {
		return fmt.Errorf("the stand-in FHIR server refused %d requests", refused)
	}
	sc.Notes = append(sc.Notes, fmt.Sprintf("id-only at %d clients: %s notifications/s, ratio %.3f to the ceiling (full-resource: %.3f); the stand-in served %d Appointments and issued %d tokens.",
		ceilingClients, fmtCount(idTput), idTput/ceil.Throughput, sc.System.Value/ceil.Throughput, reads, tokens))
	sc.Notes = append(sc.Notes, fmt.Sprintf("Ratio: system closed loop at %d clients over the ceiling at %d clients. Open loops run at fractions of the larger closed-loop throughput (%s/s), with at most %d requests in flight.",
		ceilingClients, ceilingClients, fmtCount(maxTput), openWorkers))
	return nil
}

// runIDOnly adds the id-only rows (closed loops, then an open loop at 50%
// of their maximum) and returns the closed-loop throughput at
// ceilingClients.
func runIDOnly(ctx context.Context, cfg Config, sc *Scenario, system series, post func(tag string) Op, tags *runTags) (float64, error) {
	var maxTput, at16 float64
	for _, clients := range closedClients {
		cfg.logf("%s: system, id-only, closed loop, %d clients", sc.ID, clients)
		runs, cpu, err := system.run(ctx, false, func(ctx context.Context, d time.Duration) LoadResult {
			return ClosedLoop(ctx, clients, d, post(tags.next()))
		})
		if err != nil {
			return 0, err
		}
		row := Summarize("system", fmt.Sprintf("id-only, closed, %d clients", clients), runs)
		row.CPU, row.HistName = cpu, "POST → fetch → 200 latency (service time)"
		sc.Rows = append(sc.Rows, row)
		maxTput = max(maxTput, row.Throughput)
		if clients == ceilingClients {
			at16 = row.Throughput
		}
	}
	rate := 0.5 * maxTput
	cfg.logf("%s: system, id-only, open loop, %.0f/s", sc.ID, rate)
	runs, cpu, err := system.run(ctx, false, func(ctx context.Context, d time.Duration) LoadResult {
		return OpenLoop{Rate: rate, Duration: d, Workers: openWorkers}.Run(ctx, post(tags.next()))
	})
	if err != nil {
		return 0, err
	}
	row := Summarize("system", fmt.Sprintf("id-only, open, 50%% of max = %s/s", fmtCount(rate)), runs)
	row.CPU, row.HistName = cpu, "POST → fetch → 200 latency from the planned send time"
	sc.Rows = append(sc.Rows, row)
	return at16, nil
}
