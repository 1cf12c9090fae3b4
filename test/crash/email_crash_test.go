package crash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	netmail "net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/carenotify/carenotify/deploy/devstack/devca"
	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/bus/embedded"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/grpcx"
	"github.com/carenotify/carenotify/pkg/store/redisproc"
	emailv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/email/v1"
)

const (
	emailCount   = 2000
	emailClients = 8
	emailKills   = 5 // email is killed after every 1/6 of the Sends is answered
	emailDomain  = "carenotify.localhost"
)

// TestEmailSurvivesKills is the email crash test of issue 5: 2,000 Sends
// through the email binary, which is killed with SIGKILL and restarted
// while it queues and delivers them to an SMTP sink with STARTTLS; the
// clients retry every Send that did not answer, with the same idempotency
// key. Afterwards every message must have reached the sink, and each
// exactly once, except where the service says the outcome of an attempt
// was unknown (killed between the sink's 250 and recording it): such a
// resend carries the same Message-ID, and the record counts it.
func TestEmailSurvivesKills(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped with -short")
	}
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()

	bin := filepath.Join(dir, "email")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./services/email/cmd/email")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build email: %v\n%s", err, out)
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
	ca, err := devca.Ensure(filepath.Join(dir, "ca"), []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	sink := startSink(t, ca)

	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	logPath := filepath.Join(dir, "email.log")
	email := &ingest{t: t, bin: bin, logPath: logPath, env: append(os.Environ(),
		"EMAIL_HTTP_ADDR="+httpAddr,
		"EMAIL_GRPC_ADDR="+grpcAddr,
		"EMAIL_NATS_URL="+ns.ClientURL(),
		"EMAIL_REDIS_URL="+rs.URL,
		"EMAIL_LOG_LEVEL=warn",
		"EMAIL_KEYRING_DIR="+keysDir,
		"EMAIL_AUDIT_PSEUDONYM_KEY_FILE="+pseudonym,
		"EMAIL_AUDIT_SIGNING_KEY_FILE="+signing,
		"EMAIL_SMTP_HOST=localhost",
		"EMAIL_SMTP_PORT="+strconv.Itoa(sink.port),
		"EMAIL_SMTP_CA_FILE="+ca.CAFile,
		"EMAIL_FROM=Carenotify <noreply@"+emailDomain+">",
		"EMAIL_WORKERS=4",
		// A killed process's message locks and unacknowledged outbox
		// messages come back after this plus 30 s.
		"EMAIL_SEND_TIMEOUT=2s",
		"EMAIL_SHUTDOWN_GRACE=2s",
	), readyURL: "http://" + httpAddr + "/readyz"}
	email.start(ctx)
	defer email.stop()

	cc, err := grpcx.NewClient(grpcAddr, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := emailv1.NewEmailServiceClient(cc)

	// ids[i] is the message id Send answered for key i.
	var (
		idsMu                    sync.Mutex
		ids                      = make([]string, emailCount)
		answered, retries, kills atomic.Int64
		wg                       sync.WaitGroup
	)
	for w := range emailClients {
		wg.Go(func() {
			for i := w; i < emailCount; i += emailClients {
				req := &emailv1.SendRequest{
					Tenant: tenant, IdempotencyKey: fmt.Sprintf("crash-email-%05d", i),
					To: fmt.Sprintf("crash.%05d@example.org", i), Subject: "Your appointment",
					TextBody: "See you on Tuesday.", Security: emailv1.Security_SECURITY_PHI,
				}
				for ctx.Err() == nil {
					cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
					resp, err := client.Send(cctx, req)
					ccancel()
					if err == nil {
						idsMu.Lock()
						if ids[i] != "" && ids[i] != resp.GetMessageId() {
							t.Errorf("key %d answered with two message ids", i)
						}
						ids[i] = resp.GetMessageId()
						idsMu.Unlock()
						answered.Add(1)
						break
					}
					retries.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	sendersDone := make(chan struct{})
	go func() { wg.Wait(); close(sendersDone) }()

	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case <-sendersDone:
			break loop
		case <-ctx.Done():
			t.Fatalf("clients did not finish: %v (answered %d, retries %d, kills %d)", ctx.Err(), answered.Load(), retries.Load(), kills.Load())
		case <-tick.C:
			if k := kills.Load(); k < emailKills && answered.Load() >= (k+1)*emailCount/(emailKills+1) {
				email.kill()
				kills.Add(1)
				email.start(ctx)
			}
		}
	}
	// Kill once more while the workers are still delivering.
	if sink.distinct() < emailCount {
		email.kill()
		kills.Add(1)
		email.start(ctx)
	}

	// Wait until the outbox is drained: every message acknowledged,
	// including those a killed process held (they come back after the ack
	// wait).
	drain(t, ctx, ns.ClientURL())
	email.stop()

	rdb := redis.NewClient(mustParseRedis(t, rs.URL))
	defer rdb.Close()
	var lost, dups, uncertain, unexplained, badHeader int
	seen := sink.snapshot()
	for i, id := range ids {
		n := seen[id]
		switch {
		case id == "":
			t.Fatalf("key %d was never answered", i)
		case n.count == 0:
			lost++
			continue
		case n.messageID != "<"+id+"@"+emailDomain+">":
			badHeader++
		}
		rec, err := rdb.HGetAll(ctx, "cn:{"+tenant+"}:email:msg:"+id).Result()
		if err != nil {
			t.Fatal(err)
		}
		u, _ := strconv.Atoi(rec["uncertain_resends"])
		uncertain += u
		if rec["status"] != "sent" || rec["sending"] == "1" {
			t.Errorf("record of %s: status %q, sending %q; want sent, not sending", id, rec["status"], rec["sending"])
		}
		if n.count > 1 {
			dups += n.count - 1
			if n.count-1 > u {
				unexplained += n.count - 1 - u
			}
		}
	}
	t.Logf("sends=%d, kills=%d, client retries=%d, delivered=%d distinct (%d in all, all over TLS: %v), lost=%d, duplicates=%d (uncertain resends recorded %d, unexplained %d)",
		emailCount, kills.Load(), retries.Load(), len(seen), sink.total(), sink.allTLS(), lost, dups, uncertain, unexplained)
	if kills.Load() < emailKills {
		t.Errorf("email was killed %d times, want at least %d", kills.Load(), emailKills)
	}
	if lost != 0 || unexplained != 0 || badHeader != 0 {
		t.Errorf("lost = %d, unexplained duplicates = %d, messages without their deterministic Message-ID = %d; want 0, 0, 0", lost, unexplained, badHeader)
	}
	if len(seen) != emailCount {
		t.Errorf("sink received %d distinct messages, want %d (some not sent by this test?)", len(seen), emailCount)
	}
	if !sink.allTLS() {
		t.Error("a message reached the sink without TLS")
	}
	if t.Failed() {
		if b, err := os.ReadFile(logPath); err == nil {
			t.Logf("email log (tail):\n%s", tail(b, 4000))
		}
	}
}

// drain waits until the delivery consumer of OUTBOX_EMAIL has nothing
// pending and nothing unacknowledged.
func drain(t *testing.T, ctx context.Context, natsURL string) {
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
	for {
		c, err := js.Consumer(ctx, bus.OutboxStream("email"), "email-delivery")
		if err == nil {
			info, err := c.Info(ctx)
			if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("outbox not drained: %v", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func mustParseRedis(t *testing.T, u string) *redis.Options {
	t.Helper()
	o, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// sink is the SMTP server the email service delivers to: STARTTLS with
// the test CA's certificate, every message counted by its
// X-Carenotify-Message-Id.
type sink struct {
	port int

	mu      sync.Mutex
	seen    map[string]seenMessage
	n       int
	noTLS   int
	invalid int
}

type seenMessage struct {
	count     int
	messageID string
}

func startSink(t *testing.T, ca *devca.CA) *sink {
	t.Helper()
	s := &sink{seen: map[string]seenMessage{}}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &sinkSession{s: s, c: c}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = ca.ServerTLS
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *sink) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func (s *sink) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *sink) allTLS() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.noTLS == 0 && s.invalid == 0
}

func (s *sink) snapshot() map[string]seenMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]seenMessage, len(s.seen))
	for k, v := range s.seen {
		out[k] = v
	}
	return out
}

type sinkSession struct {
	s *sink
	c *smtp.Conn
}

func (ss *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (ss *sinkSession) Reset()                               {}
func (ss *sinkSession) Logout() error                        { return nil }

func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, tlsOn := ss.c.TLSConnectionState()
	m, err := netmail.ReadMessage(bytes.NewReader(b))
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	ss.s.n++
	if !tlsOn {
		ss.s.noTLS++
	}
	if err != nil {
		ss.s.invalid++
		return errors.New("unreadable message")
	}
	id := m.Header.Get("X-Carenotify-Message-Id")
	e := ss.s.seen[id]
	e.count++
	e.messageID = m.Header.Get("Message-Id")
	ss.s.seen[id] = e
	return nil
}
