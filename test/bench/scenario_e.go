package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/deploy/devstack/stack"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/bus/embedded"
	"github.com/carenotify/carenotify/pkg/envelope"
)

// Scenario e's constants, mirroring services/journey/internal/timers
// (which the test module may not import).
const (
	timerPublishers = 16
	timerFireRate   = 2000 // timers due per second in the firing batch
	timerKind       = "journey-timer"
	timerFiredTTL   = 7 * 24 * time.Hour
	timerJourney    = "appointment-reminder"
	timerStep       = 1 // the step after the journey's wait_until, which the timer resumes at
	timerSource     = "journey"
	// DefaultTimerPending is scenario e's full-run count of pending
	// schedules; smoke runs use SmokeTimerPending.
	DefaultTimerPending = 1_000_000
	SmokeTimerPending   = 2_000
)

// Timers runs scenario e: pending journey timers as JetStream message
// schedules on a JOURNEY_TIMERS stream (bus.JourneyTimers). Both legs run
// against their own embedded NATS server; see the notes it writes.
func Timers(ctx context.Context, cfg Config, ingestBin string, pending int) *Scenario {
	sc := &Scenario{ID: "e", Title: "1M pending reminders through the journey's scheduling path"}
	if err := runTimers(ctx, cfg, ingestBin, pending, sc); err != nil {
		sc.Status = "failed: " + err.Error()
	}
	return sc
}

// timerShape is the message journey's timers.Store.Schedule writes for one
// appointment-reminder instance, learnt from a real event.
type timerShape struct {
	tenant, version string
	// plain is the body before sealing: the JSON payload of
	// timers.Store.Schedule around the stripped ClinicalEvent.
	plain []byte
	// eventBytes and strippedBytes are the event's wire sizes before and
	// after journey strips it.
	eventBytes, strippedBytes int
}

func (s *timerShape) instance(ref string) string {
	sum := sha256.Sum256([]byte(s.tenant + "|" + timerJourney + "|" + ref))
	return hex.EncodeToString(sum[:8])
}

func (s *timerShape) subjects(instance string) (schedule, fire string, err error) {
	st := strconv.Itoa(timerStep)
	if schedule, err = bus.Subject("journey", "timers", s.tenant, timerJourney, instance, st); err != nil {
		return "", "", err
	}
	fire, err = bus.Subject("journey", "fire", s.tenant, timerJourney, instance, st)
	return schedule, fire, err
}

func (s *timerShape) header() nats.Header {
	h := nats.Header{}
	h.Set(bus.HeaderTenant, s.tenant)
	h.Set(bus.HeaderSource, timerSource)
	return h
}

// probeTimerShape posts one FHIR notification to a real ingest process,
// opens the sealed ClinicalEvent it stored, and builds the timer body
// journey would seal for it.
func probeTimerShape(ctx context.Context, cfg Config, ingestBin string) (*timerShape, error) {
	dir := filepath.Join(cfg.TmpDir, "scenario-e", "probe")
	env, err := startIngestBench(ctx, ingestBin, dir, false)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	notes, err := LoadNotifications(cfg.Root)
	if err != nil {
		return nil, err
	}
	poster := NewPoster(env.ing.URL, 1)
	defer poster.Close()
	if err := poster.Post(ctx, notes.Body(newRunTags().next()+"x0")); err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	msg, err := env.stream.GetLastMsgForSubject(ctx, eventSubject)
	if err != nil {
		return nil, fmt.Errorf("probe: read the event: %w", err)
	}
	kr, err := envelope.LoadKeyring(filepath.Join(dir, "keys", "keyring"))
	if err != nil {
		return nil, err
	}
	ks, err := envelope.OpenKVStore(ctx, env.js)
	if err != nil {
		return nil, err
	}
	tenant := msg.Header.Get(bus.HeaderTenant)
	plainEv, err := envelope.NewSealer(kr, ks).Open(ctx, msg.Data,
		envelope.Binding{Tenant: tenant, Kind: envelope.KindEHREvent, ID: msg.Header.Get(jetstream.MsgIDHeader)})
	if err != nil {
		return nil, fmt.Errorf("probe: open the event: %w", err)
	}
	stripped, err := stripTimerEvent(plainEv)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	file, err := os.ReadFile(filepath.Join(cfg.Root, "deploy", "examples", "journeys", timerJourney+".yaml"))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(file)
	version := hex.EncodeToString(sum[:6]) // catalog.version
	body, err := json.Marshal(struct {
		Journey string `json:"journey"`
		Version string `json:"version"`
		Step    int    `json:"step"`
		Event   []byte `json:"event"`
	}{timerJourney, version, timerStep, stripped})
	if err != nil {
		return nil, err
	}
	if tenant != stack.DemoTenant {
		return nil, fmt.Errorf("probe: event of tenant %q, want %q", tenant, stack.DemoTenant)
	}
	return &timerShape{tenant: tenant, version: version, plain: body, eventBytes: len(plainEv), strippedBytes: len(stripped)}, nil
}

// stripTimerEvent does in protobuf wire format what timers.Store.Schedule
// does to the ClinicalEvent (carenotify.events.v1): it drops original (11)
// and original_content_type (12), and the patient's (8) identifiers (2).
// The test module does not depend on the generated Go.
func stripTimerEvent(b []byte) ([]byte, error) {
	out, err := dropFields(b, map[uint64]bool{11: true, 12: true}, func(num uint64, v []byte) ([]byte, error) {
		if num == 8 {
			return dropFields(v, map[uint64]bool{2: true}, nil)
		}
		return v, nil
	})
	if err != nil {
		return nil, fmt.Errorf("strip event: %w", err)
	}
	return out, nil
}

// dropFields re-encodes a protobuf message without the given fields;
// nested, when set, may rewrite length-delimited fields.
func dropFields(b []byte, drop map[uint64]bool, nested func(num uint64, v []byte) ([]byte, error)) ([]byte, error) {
	var out []byte
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errors.New("bad tag")
		}
		num, typ := tag>>3, tag&7
		rest := b[n:]
		var size int
		var val []byte
		switch typ {
		case 0:
			_, m := binary.Uvarint(rest)
			if m <= 0 {
				return nil, errors.New("bad varint")
			}
			size = m
		case 1:
			size = 8
		case 5:
			size = 4
		case 2:
			l, m := binary.Uvarint(rest)
			if m <= 0 || uint64(len(rest)-m) < l {
				return nil, errors.New("bad length")
			}
			size = m + int(l)
			val = rest[m:size]
		default:
			return nil, fmt.Errorf("wire type %d not supported", typ)
		}
		if size > len(rest) {
			return nil, errors.New("truncated")
		}
		if !drop[num] {
			if typ == 2 && nested != nil {
				v, err := nested(num, val)
				if err != nil {
					return nil, err
				}
				out = binary.AppendUvarint(out, tag)
				out = binary.AppendUvarint(out, uint64(len(v)))
				out = append(out, v...)
			} else {
				out = append(out, b[:n+size]...)
			}
		}
		b = rest[size:]
	}
	return out, nil
}

// readRSS returns the harness process's resident set (VmRSS), or 0 where
// /proc is missing.
func readRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			kb, err := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

// memSnapshot is the harness process's memory after a full collection
// with the freed pages returned to the OS.
type memSnapshot struct{ rss, heapInuse, sys int64 }

func snapMem() memSnapshot {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSnapshot{rss: readRSS(), heapInuse: int64(ms.HeapInuse), sys: int64(ms.Sys - ms.HeapReleased)}
}

// timerLeg is what one leg of scenario e measured.
type timerLeg struct {
	schedule, fire Row
	pending        int
	streamBytes    uint64
	streamMsgs     uint64
	before, after  memSnapshot
	bodyBytes      int
	early          int64
	fireN          int
	fireSeconds    int
}

// timerBody makes the body of timer i and its binding id's instance.
type timerBody func(ctx context.Context, instance string) ([]byte, error)

// runTimerLeg starts a NATS server under dir, declares JOURNEY_TIMERS,
// fills it with pending schedules (due a day or more ahead) from 16
// publishers, reads the stream and process memory, then schedules a batch
// due at whole seconds shortly ahead, timerFireRate per second, and
// records when each fired message reaches a consumer of journey.fire.>.
func runTimerLeg(ctx context.Context, cfg Config, dir string, pending, fireSeconds int, shape *timerShape,
	setup func(ctx context.Context, js jetstream.JetStream) (timerBody, error)) (_ *timerLeg, err error) {
	ns, err := embedded.Start(embedded.Options{Port: -1, StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		return nil, err
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	admin, err := nats.Connect(ns.ClientURL(), nats.Name("bench-admin"))
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	js, err := jetstream.New(admin)
	if err != nil {
		return nil, err
	}
	stream, err := js.CreateStream(ctx, bus.JourneyTimers(1))
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", bus.JourneyTimers(1).Name, err)
	}
	body, err := setup(ctx, js)
	if err != nil {
		return nil, err
	}
	pubs := make([]jetstream.JetStream, timerPublishers)
	for i := range pubs {
		c, err := nats.Connect(ns.ClientURL(), nats.Name("bench-timers"))
		if err != nil {
			return nil, err
		}
		defer c.Close()
		if pubs[i], err = jetstream.New(c); err != nil {
			return nil, err
		}
	}
	tag := newRunTags().next()
	publish := func(ctx context.Context, js jetstream.JetStream, ref string, due time.Time) (string, int, error) {
		inst := shape.instance(ref)
		schedule, fire, err := shape.subjects(inst)
		if err != nil {
			return "", 0, err
		}
		data, err := body(ctx, inst)
		if err != nil {
			return "", 0, err
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = js.PublishMsg(ctx, &nats.Msg{Subject: schedule, Data: data, Header: shape.header()},
			jetstream.WithScheduleAt(due), jetstream.WithScheduleTarget(fire), jetstream.WithScheduleTTL(timerFiredTTL))
		return fire, len(data), err
	}
	// fill runs n publishes from 16 publishers.
	fill := func(ctx context.Context, n int, ref func(i int) string, due func(i int) time.Time, seen func(fire string, i int)) LoadResult {
		res := LoadResult{Latency: &Histogram{}}
		var next atomic.Int64
		var ec errCollector
		var wg sync.WaitGroup
		start := time.Now()
		for w := range timerPublishers {
			wg.Go(func() {
				for ctx.Err() == nil {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					t0 := time.Now()
					fire, _, err := publish(ctx, pubs[w], ref(i), due(i))
					res.Latency.Record(time.Since(t0))
					if err != nil {
						ec.add(err)
						continue
					}
					if seen != nil {
						seen(fire, i)
					}
				}
			})
		}
		wg.Wait()
		res.Elapsed = time.Since(start)
		res.Ops = int64(min(int(next.Load()), n))
		res.Errors, res.FirstErr = ec.get()
		return res
	}

	leg := &timerLeg{pending: pending, fireSeconds: fireSeconds}
	_, n, err := publish(ctx, pubs[0], "Appointment/"+tag+"-probe", time.Now().Add(72*time.Hour))
	if err != nil {
		return nil, fmt.Errorf("first schedule: %w", err)
	}
	leg.bodyBytes = n
	if err := stream.Purge(ctx); err != nil {
		return nil, err
	}

	// Warm-up: a tenth of the fill (at most 20,000), then purged, so that
	// neither leg pays for a cold server and disk.
	warm := min(max(pending/10, 100), 20_000)
	wres := fill(ctx, warm, func(i int) string { return "Appointment/" + tag + "-warm-" + strconv.Itoa(i) },
		func(i int) time.Time { return time.Now().Add(72 * time.Hour) }, nil)
	if wres.Errors > 0 {
		return nil, fmt.Errorf("warm-up: %d schedules failed: %v", wres.Errors, wres.FirstErr)
	}
	if err := stream.Purge(ctx); err != nil {
		return nil, err
	}

	leg.before = snapMem()
	meter := cpuMeter{"harness": 0}
	cpu0 := meter.snapshot()
	base := time.Now().Truncate(time.Second).Add(48 * time.Hour)
	res := fill(ctx, pending, func(i int) string { return "Appointment/" + tag + "-" + strconv.Itoa(i) },
		func(i int) time.Time { return base.Add(time.Duration(i%86400) * time.Second) }, nil)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	leg.schedule = Summarize("", "", []LoadResult{res})
	leg.schedule.CPU = per1k(cpu0, meter.snapshot(), res.Ops)
	leg.schedule.HistName = "publish of one schedule → PubAck (service time)"
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, err
	}
	leg.streamBytes, leg.streamMsgs = info.State.Bytes, info.State.Msgs
	leg.after = snapMem()

	// Firing skew: fireSeconds × timerFireRate timers due at whole seconds,
	// timerFireRate each, starting far enough ahead that all are stored
	// before the first is due.
	leg.fireN = fireSeconds * timerFireRate
	rate := max(res.Throughput(), 500)
	lead := time.Duration(float64(leg.fireN)/rate*1.5*float64(time.Second)) + 3*time.Second
	t0 := time.Now().Add(lead).Truncate(time.Second).Add(time.Second)
	dueOf := make([]time.Time, leg.fireN)
	for i := range dueOf {
		dueOf[i] = t0.Add(time.Duration(i/timerFireRate) * time.Second)
	}
	var dues sync.Map // fire subject → due
	hist := &Histogram{}
	var got, early atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	cons, err := js.OrderedConsumer(ctx, bus.JourneyTimers(1).Name, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"journey.fire.>"}, DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return nil, err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		now := time.Now()
		d, ok := dues.Load(m.Subject())
		if !ok {
			return
		}
		skew := now.Sub(d.(time.Time))
		if skew < 0 {
			early.Add(1)
		}
		hist.Record(skew)
		if got.Add(1) == int64(leg.fireN) {
			once.Do(func() { close(done) })
		}
	})
	if err != nil {
		return nil, err
	}
	defer cc.Stop()
	fres := fill(ctx, leg.fireN, func(i int) string { return "Appointment/" + tag + "-fire-" + strconv.Itoa(i) },
		func(i int) time.Time { return dueOf[i] }, func(fire string, i int) { dues.Store(fire, dueOf[i]) })
	if fres.Errors > 0 {
		return nil, fmt.Errorf("firing batch: %d schedules failed: %v", fres.Errors, fres.FirstErr)
	}
	if time.Now().After(t0) {
		return nil, fmt.Errorf("firing batch: scheduling took %s, past the first due time", fres.Elapsed.Round(time.Millisecond))
	}
	last := dueOf[len(dueOf)-1]
	select {
	case <-done:
	case <-time.After(time.Until(last) + 30*time.Second):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	received := got.Load()
	fr := LoadResult{Latency: hist, Ops: int64(leg.fireN), Elapsed: time.Duration(fireSeconds) * time.Second}
	if missing := int64(leg.fireN) - received; missing > 0 {
		fr.Errors, fr.FirstErr = missing, fmt.Errorf("%d of %d timers had not fired 30 s after the last was due", missing, leg.fireN)
	}
	leg.early = early.Load()
	leg.fire = Summarize("", "", []LoadResult{fr})
	leg.fire.HistName = "due time → fired message received by a consumer of journey.fire.> (firing skew)"
	return leg, nil
}

func runTimers(ctx context.Context, cfg Config, ingestBin string, pending int, sc *Scenario) error {
	if pending <= 0 {
		pending = DefaultTimerPending
		if cfg.Smoke {
			pending = SmokeTimerPending
		}
	}
	fireSeconds := 10
	if cfg.Smoke {
		fireSeconds = 1
	}
	cfg.logf("e: probing the timer body with a real ingest event")
	shape, err := probeTimerShape(ctx, cfg, ingestBin)
	if err != nil {
		return err
	}
	// The sealed size, known once the system leg's sealer exists; the
	// ceiling sends random bytes of the same length: envelope header (4 +
	// "<tenant>.<yyyymmdd>") + AES-GCM nonce and tag around the plaintext.
	sealedLen := 4 + len(shape.tenant+".20060102") + envelopeOverhead + len(shape.plain)

	cfg.logf("e: ceiling, %s bare message schedules of %d bytes, %d publishers", fmtCount(float64(pending)), sealedLen, timerPublishers)
	ceil, err := runTimerLeg(ctx, cfg, filepath.Join(cfg.TmpDir, "scenario-e", "ceiling"), pending, fireSeconds, shape,
		func(context.Context, jetstream.JetStream) (timerBody, error) {
			blob := make([]byte, sealedLen)
			_, _ = rand.Read(blob)
			return func(context.Context, string) ([]byte, error) { return blob, nil }, nil
		})
	if err != nil {
		return fmt.Errorf("ceiling: %w", err)
	}
	cfg.logf("e: system, %s sealed journey timers, %d publishers", fmtCount(float64(pending)), timerPublishers)
	sys, err := runTimerLeg(ctx, cfg, filepath.Join(cfg.TmpDir, "scenario-e", "system"), pending, fireSeconds, shape,
		func(ctx context.Context, js jetstream.JetStream) (timerBody, error) {
			keys, err := devKeys(filepath.Join(cfg.TmpDir, "scenario-e", "system", "keys"))
			if err != nil {
				return nil, err
			}
			kr, err := envelope.LoadKeyring(keys.keyring)
			if err != nil {
				return nil, err
			}
			ks, err := envelope.NewKVStore(ctx, js, 1)
			if err != nil {
				return nil, err
			}
			sealer := envelope.NewSealer(kr, ks)
			return func(ctx context.Context, instance string) ([]byte, error) {
				return sealer.Seal(ctx, shape.plain, envelope.Binding{Tenant: shape.tenant, Kind: timerKind,
					ID: timerJourney + "." + instance + "." + strconv.Itoa(timerStep)})
			}, nil
		})
	if err != nil {
		return fmt.Errorf("system: %w", err)
	}
	realEvents, realFire := 200_000, 10
	if cfg.Smoke {
		realEvents, realFire = 200, 1
	}
	real, err := runRealTimers(ctx, cfg, shape, realEvents, realFire)
	if err != nil {
		return fmt.Errorf("system (real path): %w", err)
	}
	if sys.bodyBytes != ceil.bodyBytes {
		return fmt.Errorf("sealed timer body is %d bytes, the ceiling sent %d", sys.bodyBytes, ceil.bodyBytes)
	}

	for _, l := range []struct {
		leg  string
		what string
		t    *timerLeg
	}{{"ceiling", "bare JetStream message schedules", ceil}, {"system", "journey timer messages (reproduced shape, sealed per timer)", sys}} {
		r := l.t.schedule
		r.Leg, r.Load = l.leg, fmt.Sprintf("%s: schedule %s pending, closed, %d publishers", l.what, fmtCount(float64(l.t.pending)), timerPublishers)
		sc.Rows = append(sc.Rows, r)
		f := l.t.fire
		f.Leg, f.Load = l.leg, fmt.Sprintf("fire %s due at %s/s over %d s, with %s pending", fmtCount(float64(l.t.fireN)), fmtCount(timerFireRate), l.t.fireSeconds, fmtCount(float64(l.t.pending)))
		if l.t.early > 0 {
			f.Verdict = fmt.Sprintf("%d fired before due", l.t.early)
		}
		sc.Rows = append(sc.Rows, f)
	}
	{
		r := real.schedule
		r.Leg, r.Load = "system", fmt.Sprintf("real path: %s bookings posted to ingest → journey plans wait_until timers, closed, %d posters", fmtCount(float64(real.events)), timerPublishers)
		sc.Rows = append(sc.Rows, r)
		f := real.fire
		f.Leg, f.Load = "system", fmt.Sprintf("real path: fire %s due at %s/s over %d s, with %s pending", fmtCount(float64(real.fireN)), fmtCount(timerFireRate), real.fireSeconds, fmtCount(float64(real.events)))
		if real.early > 0 {
			f.Verdict = fmt.Sprintf("%d fired before due", real.early)
		}
		sc.Rows = append(sc.Rows, f)
	}
	sc.Ceiling = Figure{Value: ceil.schedule.Throughput, Unit: "schedules/s", What: fmt.Sprintf("%d publishers, %s pending", timerPublishers, fmtCount(float64(pending)))}
	sc.System = Figure{Value: real.schedule.Throughput, Unit: "timers/s", What: fmt.Sprintf("real path: bookings → ingest → journey, %d posters, %s pending", timerPublishers, fmtCount(float64(real.events)))}
	sc.Latency = real.fire.Percentiles() + fmt.Sprintf(" (real path firing skew, due → received, %s/s)", fmtCount(timerFireRate))

	sc.Notes = append(sc.Notes,
		"**Two system legs.** The real path (rows \"real path\") drives the journey process itself, at a smaller N (below). The 1M-pending system leg (rows \"reproduced shape\") is **reproduced, not driven through the journey process**: the test module may not import services/journey/internal/timers, and 1M bookings through ingest → journey do not fit this run, so the harness writes the exact message journey's timers.Store.Schedule writes: subject journey.timers.<tenant>.appointment-reminder.<16-hex instance key>.1, target journey.fire.…, `@at` a whole second, schedule TTL 7 days, headers Cn-Tenant and Cn-Source: journey, and a body sealed per timer (pkg/envelope, kind journey-timer, binding id <journey>.<instance>.<step>, the same data key store on NATS KV) around the JSON payload {journey, version, step, event}. The event is a real one: one FHIR notification posted to a real ingest process, its sealed ClinicalEvent opened and stripped as journey strips it (original, original content type and patient identifiers dropped, in protobuf wire format).",
		fmt.Sprintf("Timer body: event %d bytes before and %d after stripping, payload %d bytes, sealed %d bytes; the same for every timer (the instance key and binding vary). The ceiling publishes random bytes of the same length on the same subjects with the same headers and schedule headers, without sealing: the legs differ only by the per-timer seal.", shape.eventBytes, shape.strippedBytes, len(shape.plain), sys.bodyBytes),
		fmt.Sprintf("Stream: bus.JourneyTimers(1) (file storage, schedules, rollup and per-message TTL allowed), on each leg's own embedded NATS server (%s), created fresh. Pending schedules are due 48 h to 72 h ahead, spread over the day's seconds. Each leg is one run after a warm-up fill of a tenth of N (at most 20,000) that is purged (the figures are not medians): filling takes most of the time.", "in the harness process"),
		fmt.Sprintf("Firing skew: after the fill, %d s × %s timers due at consecutive whole seconds (%s/s), scheduled ahead of time with the pending ones still in the stream; an ordered consumer on journey.fire.> records (arrival − due). Journey rounds due times up to whole seconds, as here, so skew is the server's lateness plus delivery.", sys.fireSeconds, fmtCount(timerFireRate), fmtCount(timerFireRate)),
		"Memory is the harness process's, which runs the embedded nats-server: VmRSS from /proc/self/status and runtime.MemStats HeapInuse, each after runtime.GC and debug.FreeOSMemory, before the fill (stream created, connections open, a warm-up fill purged) and after it. The harness holds nothing per pending timer, so the growth is nats-server's (file store indexes, the per-subject state, the schedules' timer wheel, cached blocks). The ceiling runs first in a fresh process and is the cleaner reading; the system leg's server starts while the heap still holds part of the stopped ceiling server's, which it may reuse.",
	)
	sc.Notes = append(sc.Notes, fmt.Sprintf("Real path (system rows marked so): the development stack (stack.Start: %s as processes, NATS embedded in the harness) with journey loading only appointment-reminder.yaml; %s FHIR bookings of appointments 48 h to 72 h ahead are posted to ingest from %d posters, and the rate counts from the first post until JOURNEY_TIMERS holds every timer. A probe booking's schedule was found on the subject the reproduced legs compute (%s, against %d bytes of data in the reproduced legs: the same but for the ids' lengths in the sealed event). Then %s bookings whose reminders (start − 24 h) fall due at %s/s, watched as above. The stream held %d messages, %s (%.0f bytes per pending timer, as stored); the harness process (which runs that NATS server) grew %s in RSS (%+.0f bytes per pending timer; it still holds the earlier legs' heap, see below). The headline system figure and latency are this path's; its N is smaller than the reproduced legs' because journey plans about %s timers/s here, so 1M would take %s.",
		real.processes, fmtCount(float64(real.events)), timerPublishers, real.subjectOK, sys.bodyBytes, fmtCount(float64(real.fireN)), fmtCount(timerFireRate), real.msgs, fmtBytes(int64(real.bytes)), float64(real.bytes)/float64(max(real.msgs, 1)),
		fmtBytes(real.after.rss-real.before.rss), float64(real.after.rss-real.before.rss)/float64(real.events),
		fmtCount(real.schedule.Throughput), (time.Duration(1e6/max(real.schedule.Throughput, 1))*time.Second).Round(time.Second)))
	for _, l := range []struct {
		leg string
		t   *timerLeg
	}{{"ceiling", ceil}, {"system", sys}} {
		t := l.t
		n := float64(t.pending)
		sc.Notes = append(sc.Notes, fmt.Sprintf("%s: %d messages, %s stream bytes = %.0f bytes per pending schedule (on disk); RSS %s → %s (+%.0f bytes per pending), heap in use %s → %s (+%.0f bytes per pending).",
			l.leg, t.streamMsgs, fmtBytes(int64(t.streamBytes)), float64(t.streamBytes)/n,
			fmtBytes(t.before.rss), fmtBytes(t.after.rss), float64(t.after.rss-t.before.rss)/n,
			fmtBytes(t.before.heapInuse), fmtBytes(t.after.heapInuse), float64(t.after.heapInuse-t.before.heapInuse)/n))
	}
	// The larger of the two legs' growth: the system leg's server starts in
	// a process whose heap still holds some of the ceiling's.
	perRSS := max(float64(sys.after.rss-sys.before.rss), float64(ceil.after.rss-ceil.before.rss)) / float64(sys.pending)
	perDisk := float64(sys.streamBytes) / float64(sys.pending)
	label := "measured"
	if sys.pending != DefaultTimerPending {
		label = fmt.Sprintf("extrapolated linearly from %s pending", fmtCount(float64(sys.pending)))
	}
	sc.Notes = append(sc.Notes, fmt.Sprintf("**Memory budget for 1M pending reminders** (%s): nats-server resident memory +%s (the larger leg's RSS growth), stream %s on disk; filling 1M from %d publishers takes %s at the reproduced system leg's rate (journey's own path is slower, see above).",
		label, fmtBytes(int64(perRSS*1e6)), fmtBytes(int64(perDisk*1e6)), timerPublishers, (time.Duration(1e6/max(sys.schedule.Throughput, 1))*time.Second).Round(time.Second)))
	return nil
}

// envelopeOverhead is the AES-GCM nonce and tag pkg/envelope adds.
const envelopeOverhead = 12 + 16

// fmtBytes renders a byte count in binary units.
func fmtBytes(b int64) string {
	neg := ""
	if b < 0 {
		neg, b = "-", -b
	}
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%s%.2f GiB", neg, float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%s%.1f MiB", neg, float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%s%.1f KiB", neg, float64(b)/(1<<10))
	}
	return fmt.Sprintf("%s%d B", neg, b)
}

// realLeg is what the journey's real scheduling path measured.
type realLeg struct {
	events             int
	schedule           Row
	fire               Row
	msgs, bytes        uint64
	early              int64
	fireN, fireSeconds int
	subjectOK          string
	processes          string
	before, after      memSnapshot
}

// bookingAt returns the notification for id with the appointment starting
// at start (the sample's is in 2013, which no reminder journey plans).
func bookingAt(notes *Notifications, id string, start time.Time) []byte {
	b := notes.Body(id)
	b = bytes.ReplaceAll(b, []byte("2013-12-09T09:00:00Z"), []byte(start.UTC().Format(time.RFC3339)))
	return bytes.ReplaceAll(b, []byte("2013-12-09T11:00:00Z"), []byte(start.Add(time.Hour).UTC().Format(time.RFC3339)))
}

// runRealTimers drives the development stack: FHIR notifications of
// appointments ahead are posted to ingest, journey's appointment-reminder
// journey plans a wait_until timer for each, and the harness watches
// JOURNEY_TIMERS.
func runRealTimers(ctx context.Context, cfg Config, shape *timerShape, events, fireSeconds int) (*realLeg, error) {
	varDir := filepath.Join(cfg.TmpDir, "scenario-e", "stack")
	// Only the reminder journey: the confirmation journey would send an
	// email per booking, which is scenario b's path, not this one's.
	jdir := filepath.Join(varDir, "journeys")
	if err := os.MkdirAll(jdir, 0o755); err != nil {
		return nil, err
	}
	jf, err := os.ReadFile(filepath.Join(cfg.Root, "deploy", "examples", "journeys", timerJourney+".yaml"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(jdir, timerJourney+".yaml"), jf, 0o644); err != nil {
		return nil, err
	}
	s, err := stack.Start(ctx, stack.Options{Root: cfg.Root, VarDir: varDir, FreePorts: true,
		ExtraEnv: map[string][]string{"journey": {"JOURNEY_JOURNEYS_DIR=" + jdir}}})
	if err != nil {
		return nil, err
	}
	defer s.Stop()
	nc, err := nats.Connect(s.NATSURL, nats.Name("bench-admin"))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	var stream jetstream.Stream
	for deadline := time.Now().Add(30 * time.Second); ; {
		if stream, err = js.Stream(ctx, bus.JourneyTimers(1).Name); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("journey declared no %s: %w", bus.JourneyTimers(1).Name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	notes, err := LoadNotifications(cfg.Root)
	if err != nil {
		return nil, err
	}
	poster := NewPoster(s.IngestURL, timerPublishers)
	defer poster.Close()
	tags := newRunTags()
	leg := &realLeg{events: events, fireSeconds: fireSeconds, processes: "ingest, journey, email, redis-server"}

	// waitMsgs waits until the stream holds n messages more than base.
	waitMsgs := func(base, n uint64, limit time.Duration) (uint64, error) {
		deadline := time.Now().Add(limit)
		for {
			info, err := stream.Info(ctx)
			if err != nil {
				return 0, err
			}
			if info.State.Msgs >= base+n {
				return info.State.Msgs, nil
			}
			if time.Now().After(deadline) {
				return info.State.Msgs, fmt.Errorf("%d of %d timers stored after %s (see %s)", info.State.Msgs-base, n, limit, s.LogDir)
			}
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}

	// Probe: one booking must make one schedule on the expected subject.
	probeID := tags.next() + "x0"
	if err := poster.Post(ctx, bookingAt(notes, probeID, time.Now().Add(72*time.Hour))); err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	if _, err := waitMsgs(0, 1, 30*time.Second); err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	want, _, err := shape.subjects(shape.instance("Appointment/bench-appt-" + probeID))
	if err != nil {
		return nil, err
	}
	pm, err := stream.GetLastMsgForSubject(ctx, want)
	if err != nil {
		return nil, fmt.Errorf("probe: no schedule on %s: %w", want, err)
	}
	leg.subjectOK = fmt.Sprintf("%d bytes of data, %d of headers", len(pm.Data), headerBytes(pm.Header))
	if err := stream.Purge(ctx); err != nil {
		return nil, err
	}

	// post posts n bookings from 16 workers; start gives each one's
	// appointment start; it returns when every timer is stored.
	post := func(n int, prefix string, start func(i int) time.Time, seen func(ref string, i int)) (LoadResult, error) {
		base, err := waitMsgs(0, 0, 0)
		if err != nil {
			return LoadResult{}, err
		}
		res := LoadResult{Latency: &Histogram{}}
		var next atomic.Int64
		var ec errCollector
		var wg sync.WaitGroup
		t0 := time.Now()
		for range timerPublishers {
			wg.Go(func() {
				for ctx.Err() == nil {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					id := prefix + strconv.Itoa(i)
					if seen != nil {
						seen("Appointment/bench-appt-"+id, i)
					}
					ts := time.Now()
					err := poster.Post(ctx, bookingAt(notes, id, start(i)))
					res.Latency.Record(time.Since(ts))
					if err != nil {
						ec.add(err)
					}
				}
			})
		}
		wg.Wait()
		res.Ops = int64(n)
		res.Errors, res.FirstErr = ec.get()
		if res.Errors > 0 {
			return res, fmt.Errorf("%d posts failed: %v", res.Errors, res.FirstErr)
		}
		if _, err := waitMsgs(base, uint64(n), 2*time.Minute+time.Duration(n)*time.Millisecond*10); err != nil {
			return res, err
		}
		res.Elapsed = time.Since(t0)
		return res, nil
	}

	cfg.logf("e: system (real path), %s bookings → ingest → journey timers", fmtCount(float64(events)))
	tag := tags.next()
	anchor := time.Now().Truncate(time.Second).Add(48 * time.Hour)
	leg.before = snapMem()
	res, err := post(events, tag+"p", func(i int) time.Time { return anchor.Add(time.Duration(i%86400) * time.Second) }, nil)
	if err != nil {
		return nil, fmt.Errorf("fill: %w", err)
	}
	leg.schedule = Summarize("", "", []LoadResult{res})
	leg.schedule.HistName = "POST → 200 at ingest (the timer is stored later; the rate counts until the last is stored)"
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, err
	}
	leg.msgs, leg.bytes = info.State.Msgs, info.State.Bytes
	leg.after = snapMem()

	// Firing skew: bookings whose reminder (start − 24 h) falls due at
	// whole seconds, timerFireRate per second, scheduled ahead.
	leg.fireN = fireSeconds * timerFireRate
	lead := time.Duration(float64(leg.fireN)/max(res.Throughput(), 50)*1.5*float64(time.Second)) + 5*time.Second
	t0 := time.Now().Add(lead).Truncate(time.Second).Add(time.Second)
	dueOf := func(i int) time.Time { return t0.Add(time.Duration(i/timerFireRate) * time.Second) }
	var dues sync.Map
	hist := &Histogram{}
	var got, early atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	cons, err := js.OrderedConsumer(ctx, bus.JourneyTimers(1).Name, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"journey.fire.>"}, DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return nil, err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		now := time.Now()
		d, ok := dues.LoadAndDelete(m.Subject())
		if !ok {
			return
		}
		skew := now.Sub(d.(time.Time))
		if skew < 0 {
			early.Add(1)
		}
		hist.Record(skew)
		if got.Add(1) == int64(leg.fireN) {
			once.Do(func() { close(done) })
		}
	})
	if err != nil {
		return nil, err
	}
	defer cc.Stop()
	fireTag := tags.next() + "f"
	fres, err := post(leg.fireN, fireTag, func(i int) time.Time { return dueOf(i).Add(24 * time.Hour) },
		func(ref string, i int) {
			_, fire, _ := shape.subjects(shape.instance(ref))
			dues.Store(fire, dueOf(i))
		})
	if err != nil {
		return nil, fmt.Errorf("firing batch: %w", err)
	}
	if time.Now().After(t0) {
		return nil, fmt.Errorf("firing batch: planning took %s, past the first due time", fres.Elapsed.Round(time.Millisecond))
	}
	select {
	case <-done:
	case <-time.After(time.Until(dueOf(leg.fireN-1)) + 30*time.Second):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	fr := LoadResult{Latency: hist, Ops: int64(leg.fireN), Elapsed: time.Duration(fireSeconds) * time.Second}
	if missing := int64(leg.fireN) - got.Load(); missing > 0 {
		fr.Errors, fr.FirstErr = missing, fmt.Errorf("%d of %d timers had not fired 30 s after the last was due", missing, leg.fireN)
	}
	leg.early = early.Load()
	leg.fire = Summarize("", "", []LoadResult{fr})
	leg.fire.HistName = "due time → fired message received by a consumer of journey.fire.> (firing skew, real path)"
	return leg, nil
}

func headerBytes(h nats.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}
