package crash

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/carenotify/carenotify/deploy/devstack/demo"
	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/bus/embedded"
	"github.com/carenotify/carenotify/pkg/corpus"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/store/redisproc"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
)

const (
	hl7Count    = 2000
	fhirCount   = 2000
	senders     = 4 // per protocol
	kills       = 6 // ingest is killed after every 1/7 of the messages is acknowledged
	tenant      = "demo"
	source      = "demo"
	sourceToken = "crash-token"
)

// counters are the test's figures, reported at the end.
type counters struct {
	hl7Retries, fhirRetries, kills, acked atomic.Int64
}

// TestIngestSurvivesKills is the crash test of issue 3.
func TestIngestSurvivesKills(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped with -short")
	}
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()

	// Build ingest while NATS and the keys come up.
	bin := filepath.Join(dir, "ingest")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./services/ingest/cmd/ingest")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build ingest: %v\n%s", err, out)
	}

	ns, err := embedded.Start(embedded.Options{Port: -1, StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	keysDir := filepath.Join(dir, "keys")
	kid, err := envelope.GenerateKEK(keysDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := envelope.SetPrimary(keysDir, kid); err != nil {
		t.Fatal(err)
	}
	pseudonym, signing := filepath.Join(dir, "pseudonym.key"), filepath.Join(dir, "signing.key")
	if err := audit.GeneratePseudonymKey(pseudonym); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.GenerateSigningKey(signing); err != nil {
		t.Fatal(err)
	}

	rs, err := redisproc.Start(ctx, redisproc.Options{Dir: filepath.Join(dir, "redis"), AppendOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Stop()

	httpAddr, mllpAddr := freeAddr(t), freeAddr(t)
	logPath := filepath.Join(dir, "ingest.log")
	ing := &ingest{t: t, bin: bin, logPath: logPath, env: append(os.Environ(),
		"INGEST_HTTP_ADDR="+httpAddr,
		"INGEST_NATS_URL="+ns.ClientURL(),
		"INGEST_REDIS_URL="+rs.URL,
		"INGEST_LOG_LEVEL=warn",
		"INGEST_KEYRING_DIR="+keysDir,
		"INGEST_AUDIT_PSEUDONYM_KEY_FILE="+pseudonym,
		"INGEST_AUDIT_SIGNING_KEY_FILE="+signing,
		"INGEST_SOURCES="+source+"="+tenant+":"+sourceToken,
		"INGEST_MLLP_ADDR="+mllpAddr,
		"INGEST_MLLP_SOURCE="+source+"="+tenant,
		// A killed replica's resource locks block its retries this long.
		"INGEST_STATE_LOCK_TTL=6s",
	), readyURL: "http://" + httpAddr + "/readyz"}
	ing.start(ctx)
	defer ing.stop()

	hl7Msgs := hl7Messages(t, root)
	fhirBodies := fhirNotifications(t, root)
	endpoint := "http://" + httpAddr + "/fhir/" + source + "/notifications"

	var c counters
	var wg sync.WaitGroup
	sendersDone := make(chan struct{})
	for w := range senders {
		wg.Go(func() {
			m := &mllpSender{addr: mllpAddr}
			defer m.close()
			for i := w; i < len(hl7Msgs); i += senders {
				c.hl7Retries.Add(m.send(ctx, hl7Msgs[i]))
				c.acked.Add(1)
			}
		})
		wg.Go(func() {
			for i := w; i < len(fhirBodies); i += senders {
				c.fhirRetries.Add(sendFHIR(ctx, endpoint, fhirBodies[i]))
				c.acked.Add(1)
			}
		})
	}
	go func() { wg.Wait(); close(sendersDone) }()

	total := int64(len(hl7Msgs) + len(fhirBodies))
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case <-sendersDone:
			break loop
		case <-ctx.Done():
			t.Fatalf("senders did not finish: %v (retries hl7=%d fhir=%d, kills=%d)", ctx.Err(), c.hl7Retries.Load(), c.fhirRetries.Load(), c.kills.Load())
		case <-tick.C:
			if k := c.kills.Load(); k < kills && c.acked.Load() >= (k+1)*total/(kills+1) {
				ing.kill()
				c.kills.Add(1)
				ing.start(ctx)
			}
		}
	}

	missing, dups, appt := verify(t, ctx, ns.ClientURL(), keysDir)
	t.Logf("sent hl7=%d fhir=%d, kills=%d, retries hl7=%d fhir=%d, appointment events=%d, missing=%d, duplicates=%d",
		len(hl7Msgs), len(fhirBodies), c.kills.Load(), c.hl7Retries.Load(), c.fhirRetries.Load(), appt, missing, dups)
	if c.kills.Load() != kills {
		t.Errorf("ingest was killed %d times, want %d", c.kills.Load(), kills)
	}
	if missing != 0 || dups != 0 {
		t.Errorf("missing = %d, duplicates = %d, want 0 and 0", missing, dups)
	}
	if t.Failed() {
		if b, err := os.ReadFile(logPath); err == nil {
			t.Logf("ingest log (tail):\n%s", tail(b, 4000))
		}
	}
}

// ingest is the ingest process under test.
type ingest struct {
	t                      *testing.T
	bin, logPath, readyURL string
	env                    []string
	mu                     sync.Mutex
	cmd                    *exec.Cmd
}

// start runs ingest and waits until /readyz answers 200.
func (p *ingest) start(ctx context.Context) {
	p.t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(p.bin)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start ingest: %v", err)
	}
	p.mu.Lock()
	p.cmd = cmd
	p.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		resp, err := http.Get(p.readyURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(p.logPath)
	p.t.Fatalf("ingest not ready\n%s", tail(b, 4000))
}

// kill sends SIGKILL and reaps the process.
func (p *ingest) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	p.cmd = nil
}

// stop ends ingest gracefully (SIGTERM), then kills it after 10 s.
func (p *ingest) stop() {
	p.mu.Lock()
	cmd := p.cmd
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// hl7Messages builds distinct SIU^S12 messages from a corpus message,
// changing MSH-10 (control id), SCH-1 and SCH-2 (placer and filler
// appointment ids: ingest keeps the state of an appointment by both, so
// distinct appointments need distinct ids).
func hl7Messages(t *testing.T, root string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "..", "shared", "corpus", "hl7v2", "SIU_S12", "msconv-SIU-S12-01.hl7"))
	if err != nil {
		t.Fatalf("corpus message: %v", err)
	}
	text := strings.NewReplacer("\r\n", "\r", "\n", "\r").Replace(string(raw))
	segs := strings.Split(strings.TrimRight(text, "\r"), "\r")
	out := make([][]byte, hl7Count)
	for i := range out {
		s := make([]string, len(segs))
		for j, seg := range segs {
			f := strings.Split(seg, "|")
			switch {
			case f[0] == "MSH" && len(f) > 9:
				f[9] = fmt.Sprintf("CRASHMSG%05d", i) // MSH-10: MSH-1 is the separator itself
			case f[0] == "SCH" && len(f) > 2:
				f[1] = fmt.Sprintf("crash-hl7-%05d", i)
				f[2] = fmt.Sprintf("crash-filler-%05d", i)
			}
			s[j] = strings.Join(f, "|")
		}
		out[i] = []byte(strings.Join(s, "\r") + "\r")
	}
	return out
}

// fhirNotifications builds distinct appointment-booked notifications.
func fhirNotifications(t *testing.T, root string) [][]byte {
	t.Helper()
	tmpl, err := os.ReadFile(filepath.Join(root, "deploy", "examples", "notifications", "appointment-booked.json"))
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, fhirCount)
	for i := range out {
		b, err := demo.NewBooking(tmpl, fmt.Sprintf("crash-fhir-%05d", i), fmt.Sprintf("crash-pat-%05d", i), fmt.Sprintf("crash.%05d@example.org", i))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// mllpSender is one MLLP sender: one connection, reused across messages
// and redialled after any error.
type mllpSender struct {
	addr string
	conn net.Conn
}

func (m *mllpSender) close() {
	if m.conn != nil {
		_ = m.conn.Close()
		m.conn = nil
	}
}

// send sends msg until it is answered with an AA ACK; it returns the
// number of retries.
func (m *mllpSender) send(ctx context.Context, msg []byte) int64 {
	var retries int64
	for ctx.Err() == nil {
		ack, err := m.roundTrip(msg)
		if err == nil && bytes.Contains(ack, []byte("MSA|AA|")) {
			return retries
		}
		retries++
		time.Sleep(20 * time.Millisecond)
	}
	return retries
}

func (m *mllpSender) roundTrip(msg []byte) ([]byte, error) {
	if m.conn == nil {
		c, err := net.DialTimeout("tcp", m.addr, 2*time.Second)
		if err != nil {
			return nil, err
		}
		m.conn = c
	}
	ack, err := exchange(m.conn, msg)
	if err != nil {
		m.close()
	}
	return ack, err
}

func exchange(conn net.Conn, msg []byte) ([]byte, error) {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	frame := append(append([]byte{0x0b}, msg...), 0x1c, 0x0d)
	if _, err := conn.Write(frame); err != nil {
		return nil, err
	}
	r := bufio.NewReader(conn)
	if _, err := r.ReadBytes(0x0b); err != nil {
		return nil, err
	}
	body, err := r.ReadBytes(0x1c)
	if err != nil {
		return nil, err
	}
	if _, err := r.ReadByte(); err != nil {
		return nil, err
	}
	if r.Buffered() > 0 {
		return nil, errors.New("unexpected bytes after ACK")
	}
	return bytes.TrimSuffix(body, []byte{0x1c}), nil
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// sendFHIR posts body until ingest answers 200; it returns the number of
// retries.
func sendFHIR(ctx context.Context, endpoint string, body []byte) int64 {
	var retries int64
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		if err != nil {
			return retries
		}
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("Authorization", "Bearer "+sourceToken)
		resp, err := httpClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return retries
			}
		}
		retries++
		time.Sleep(20 * time.Millisecond)
	}
	return retries
}

// verify reads EHR_EVENTS and returns the appointments missing, the
// messages stored more than once (per Nats-Msg-Id and per appointment), and
// how many appointment events it found.
func verify(t *testing.T, ctx context.Context, natsURL, keysDir string) (missing, dups, appts int) {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := envelope.LoadKeyring(keysDir)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := envelope.OpenKVStore(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	sealer := envelope.NewSealer(kr, ks)
	stream, err := js.Stream(ctx, bus.StreamEHREvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := int(info.State.Msgs)
	cons, err := js.OrderedConsumer(ctx, bus.StreamEHREvents, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	perID := map[string]int{}
	perSubject := map[string]int{}
	for read := 0; read < total; {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			id := m.Headers().Get(nats.MsgIdHdr)
			perID[id]++
			plain, err := sealer.Open(ctx, m.Data(), envelope.Binding{Tenant: m.Headers().Get(bus.HeaderTenant), Kind: envelope.KindEHREvent, ID: id})
			if err != nil {
				t.Fatalf("open event %s: %v", id, err)
			}
			var ev eventsv1.ClinicalEvent
			if err := proto.Unmarshal(plain, &ev); err != nil {
				t.Fatalf("event %s: %v", id, err)
			}
			if ev.GetKind() == "appointment" {
				perSubject[ev.GetSubjectRef()]++
			}
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("read %d of %d events, then nothing", read, total)
		}
		read += n
	}
	for _, c := range perID {
		if c > 1 {
			dups += c - 1
		}
	}
	for i := range hl7Count {
		missing += missingOrDup(perSubject, fmt.Sprintf("Appointment/crash-hl7-%05d", i), &dups)
	}
	for i := range fhirCount {
		missing += missingOrDup(perSubject, fmt.Sprintf("Appointment/crash-fhir-%05d", i), &dups)
	}
	for _, c := range perSubject {
		appts += c
	}
	return missing, dups, appts
}

func missingOrDup(perSubject map[string]int, ref string, dups *int) int {
	switch c := perSubject[ref]; {
	case c == 0:
		return 1
	case c > 1:
		*dups += c - 1
	}
	return 0
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func repoRoot(t *testing.T) string { return corpus.Root(t) }

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
