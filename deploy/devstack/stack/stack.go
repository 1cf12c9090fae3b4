package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/carenotify/carenotify/deploy/devstack/devca"
	"github.com/carenotify/carenotify/deploy/devstack/inbox"
	"github.com/carenotify/carenotify/pkg/bus/embedded"
	"github.com/carenotify/carenotify/pkg/store/redisproc"
	"github.com/carenotify/carenotify/services/sms/twiliotest"
)

// Services are the five carenotify services, in start order.
var Services = []string{"email", "sms", "forms", "journey", "ingest"}

// Options configure a stack. Zero values pick the development defaults
// (fixed ports, see docs/service-shape.md); FreePorts picks free loopback
// ports instead, for tests.
type Options struct {
	// Root is the repository root (holds go.work). Required.
	Root string
	// VarDir holds NATS data, Redis files, binaries, certificates and logs.
	VarDir string
	// RedisURL uses an existing Redis instead of starting redis-server.
	RedisURL string
	// FreePorts picks free loopback ports for everything.
	FreePorts bool
	// Output receives every process's log lines, prefixed with its name.
	Output io.Writer
	// Logger logs the stack's own progress.
	Logger *slog.Logger
	// ExtraEnv adds or overrides variables per service, e.g. for tests.
	ExtraEnv map[string][]string
	// SyncAlways makes JetStream fsync before every acknowledgement, as
	// production runs it (`sync_interval: always`).
	SyncAlways bool
}

// Stack is a running system.
type Stack struct {
	// NATSURL is the embedded server's client URL.
	NATSURL string
	// RedisURL is the Redis in use.
	RedisURL string
	// Inbox is the development inbox receiving all email.
	Inbox *inbox.Inbox
	// InboxURL is the inbox web page, e.g. http://127.0.0.1:8025.
	InboxURL string
	// SMTPAddr is the inbox's SMTP listener (STARTTLS required).
	SMTPAddr string
	// Twilio is the stand-in for Twilio's Messages API that the sms
	// service sends through; every text it accepts is in Inbox too.
	Twilio *twiliotest.Server
	// SMSWebhookURL is the sms service's inbound-message webhook, where
	// Twilio.Inbound posts a patient's reply.
	SMSWebhookURL string
	// SMSSender is the demo tenant's sender number.
	SMSSender string
	// IngestURL is ingest's base URL, e.g. http://127.0.0.1:8080.
	IngestURL string
	// MLLPAddr is ingest's HL7 v2 MLLP listener, e.g. 127.0.0.1:2575.
	MLLPAddr string
	// Addrs are the HTTP (ops) addresses of each service.
	Addrs map[string]string
	// LogDir holds one <service>.log per process.
	LogDir string
	// KeysDir is the development keyring (key-encryption keys).
	KeysDir string
	// AuditKeys are the development audit trail's keys.
	AuditKeys AuditKeys
	// EmailAdminTokenFile holds the email service's admin token
	// (/admin/recipient-keys).
	EmailAdminTokenFile string
	// IngestAdminTokenFile holds ingest's INGEST_ADMIN_TOKEN
	// (/admin/dead-letters, /status/subscriptions; carenotifyctl
	// dead-letters --admin-token-file).
	IngestAdminTokenFile string
	// NATSStoreDir and RedisDir hold what NATS and Redis keep on disk.
	NATSStoreDir, RedisDir string

	logger  *slog.Logger
	nats    *server.Server
	redis   *redisproc.Server
	smtpSrv *smtp.Server
	webSrv  *http.Server
	procs   []*proc
	// deliveries stops following DELIVERY events for the inbox.
	deliveries func()
}

// ports are the development defaults; FreePorts replaces them.
var devPorts = map[string]int{
	"nats": 14222, "inbox-http": 8025, "inbox-smtp": 2525, "twilio": 8026,
	"ingest-http": 8080, "ingest-mllp": 2575,
	"journey-http": 8081, "journey-grpc": 9101,
	"email-http": 8082, "email-grpc": 9102,
	"sms-http": 8083, "sms-grpc": 9103,
	"forms-http": 8084, "forms-grpc": 9104,
}

// Start builds the services and starts everything; on error, whatever was
// started is stopped again.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Root == "" || o.VarDir == "" {
		return nil, errors.New("stack: Root and VarDir are required")
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Stack{logger: o.Logger, Addrs: map[string]string{}, LogDir: filepath.Join(o.VarDir, "logs")}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	for _, d := range []string{"nats", "redis", "bin", "certs", "logs", "keys"} {
		if err := os.MkdirAll(filepath.Join(o.VarDir, d), 0o700); err != nil {
			return nil, fmt.Errorf("create var dir: %w", err)
		}
	}
	ports, err := choosePorts(o.FreePorts)
	if err != nil {
		return nil, err
	}

	bins, err := build(ctx, o.Root, filepath.Join(o.VarDir, "bin"))
	if err != nil {
		return nil, err
	}

	s.NATSStoreDir, s.RedisDir = filepath.Join(o.VarDir, "nats"), filepath.Join(o.VarDir, "redis")
	s.nats, err = embedded.Start(embedded.Options{Port: ports["nats"], StoreDir: s.NATSStoreDir, SyncAlways: o.SyncAlways})
	if err != nil {
		return nil, err
	}
	s.NATSURL = s.nats.ClientURL()
	o.Logger.Info("nats started", "url", s.NATSURL)

	s.RedisURL = o.RedisURL
	if s.RedisURL == "" {
		s.redis, err = redisproc.Start(ctx, redisproc.Options{Dir: s.RedisDir, Port: ports["redis"], AppendOnly: true})
		if err != nil {
			return nil, err
		}
		s.RedisURL = s.redis.URL
	}
	o.Logger.Info("redis ready", "url", s.RedisURL)

	ca, err := devca.Ensure(filepath.Join(o.VarDir, "certs"), []string{"localhost", "127.0.0.1", "::1"})
	if err != nil {
		return nil, err
	}
	if err := s.startInbox(ports, ca, o.Logger); err != nil {
		return nil, err
	}

	keysDir, err := ensureKeyring(filepath.Join(o.VarDir, "keys"))
	if err != nil {
		return nil, err
	}
	s.AuditKeys, err = ensureAuditKeys(filepath.Join(o.VarDir, "keys", "audit"))
	if err != nil {
		return nil, err
	}
	s.KeysDir = keysDir
	unsubscribeKey, err := ensureSecretFile(filepath.Join(o.VarDir, "keys", "email-unsubscribe.secret"))
	if err != nil {
		return nil, err
	}
	if err := s.startTwilio(ports); err != nil {
		return nil, err
	}
	env := serviceEnv(ports, s.NATSURL, s.RedisURL, ca.CAFile, keysDir, s.AuditKeys, o.Root)
	env["sms"] = append(env["sms"],
		"SMS_TWILIO_BASE_URL="+s.Twilio.URL(),
		"SMS_TWILIO_ACCOUNT_SID="+s.Twilio.AccountSID(),
		"SMS_TWILIO_AUTH_TOKEN="+s.Twilio.AuthToken(),
		"SMS_TWILIO_SENDERS="+DemoTenant+"="+DemoSMSSender,
		"SMS_PUBLIC_URL=http://127.0.0.1:"+strconv.Itoa(ports["sms-http"]),
	)
	s.SMSSender = DemoSMSSender
	s.SMSWebhookURL = "http://127.0.0.1:" + strconv.Itoa(ports["sms-http"]) + "/twilio/inbound"
	dkimKey := filepath.Join(o.VarDir, "keys", "email-dkim.pem")
	dkimRecord, err := ensureDKIMKey(dkimKey)
	if err != nil {
		return nil, err
	}
	s.Inbox.SetDKIMKeys(map[string]string{dkimSelector + "._domainkey." + dkimDomain: dkimRecord})
	s.EmailAdminTokenFile, err = ensureSecretFile(filepath.Join(o.VarDir, "keys", "email-admin.token"))
	if err != nil {
		return nil, err
	}
	env["email"] = append(env["email"],
		"EMAIL_UNSUBSCRIBE_BASE_URL=http://127.0.0.1:"+strconv.Itoa(ports["email-http"]),
		"EMAIL_UNSUBSCRIBE_KEY_FILE="+unsubscribeKey,
		"EMAIL_DKIM_KEY_FILE="+dkimKey,
		"EMAIL_DKIM_SELECTOR="+dkimSelector,
		"EMAIL_ADMIN_TOKEN_FILE="+s.EmailAdminTokenFile,
	)
	s.IngestAdminTokenFile, err = ensureSecretFile(filepath.Join(o.VarDir, "keys", "ingest-admin.token"))
	if err != nil {
		return nil, err
	}
	ingestAdmin, err := os.ReadFile(s.IngestAdminTokenFile)
	if err != nil {
		return nil, err
	}
	env["ingest"] = append(env["ingest"], "INGEST_ADMIN_TOKEN="+strings.TrimSpace(string(ingestAdmin)))
	for _, name := range Services {
		s.Addrs[name] = "127.0.0.1:" + strconv.Itoa(ports[name+"-http"])
		vars := append(env[name], o.ExtraEnv[name]...)
		p, err := startProc(name, bins[name], vars, o.Root, o.Output, s.LogDir)
		if err != nil {
			return nil, err
		}
		s.procs = append(s.procs, p)
	}
	s.IngestURL = "http://" + s.Addrs["ingest"]
	s.MLLPAddr = "127.0.0.1:" + strconv.Itoa(ports["ingest-mllp"])
	for _, name := range Services {
		if err := waitReady(ctx, "http://"+s.Addrs[name]+"/readyz", s.procByName(name)); err != nil {
			return nil, fmt.Errorf("%s not ready: %w (see %s)", name, err, filepath.Join(s.LogDir, name+".log"))
		}
	}
	// The email service has declared DELIVERY by now.
	if err := s.followDeliveries(); err != nil {
		return nil, err
	}
	o.Logger.Info("carenotify is running", "ingest", s.IngestURL, "inbox", s.InboxURL)
	return s, nil
}

func (s *Stack) startInbox(ports map[string]int, ca *devca.CA, logger *slog.Logger) error {
	s.Inbox = inbox.New()
	smtpL, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(ports["inbox-smtp"]))
	if err != nil {
		return fmt.Errorf("listen inbox smtp: %w", err)
	}
	s.SMTPAddr = smtpL.Addr().String()
	s.smtpSrv = s.Inbox.NewSMTPServer(s.SMTPAddr, ca.ServerTLS, true, logger)
	go func() { _ = s.smtpSrv.Serve(smtpL) }()

	webL, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(ports["inbox-http"]))
	if err != nil {
		return fmt.Errorf("listen inbox http: %w", err)
	}
	s.webSrv = &http.Server{Handler: s.Inbox.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.webSrv.Serve(webL) }()
	s.InboxURL = "http://" + webL.Addr().String()
	return nil
}

// startTwilio starts the Twilio stand-in on the "twilio" port. It posts
// "sent" and "delivered" receipts for every message, as Twilio does, and
// shows every text in the inbox.
func (s *Stack) startTwilio(ports map[string]int) error {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(ports["twilio"]))
	if err != nil {
		return fmt.Errorf("listen twilio stand-in: %w", err)
	}
	s.Twilio, err = twiliotest.Start(twiliotest.Options{
		Listener: l, AutoReceipts: true,
		OnMessage: func(m twiliotest.Message) {
			from := m.From
			if from == "" {
				from = m.MessagingServiceSID
			}
			s.Inbox.AddSMS(from, m.To, m.Body)
		},
	})
	return err
}

func (s *Stack) procByName(name string) *proc {
	for _, p := range s.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// Exited returns a channel that is closed when any service process exits
// on its own.
func (s *Stack) Exited() <-chan string {
	ch := make(chan string, len(s.procs))
	for _, p := range s.procs {
		go func() {
			<-p.done
			ch <- p.name
		}()
	}
	return ch
}

// Stop stops the services (SIGTERM, then SIGKILL after 10s) in reverse
// order, then the inbox, the Twilio stand-in, Redis and NATS.
func (s *Stack) Stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop(10 * time.Second)
	}
	if s.deliveries != nil {
		s.deliveries()
	}
	if s.webSrv != nil {
		_ = s.webSrv.Close()
	}
	if s.smtpSrv != nil {
		_ = s.smtpSrv.Close()
	}
	if s.Twilio != nil {
		s.Twilio.Close()
	}
	if s.redis != nil {
		s.redis.Stop()
	}
	if s.nats != nil {
		s.nats.Shutdown()
		s.nats.WaitForShutdown()
	}
}

func choosePorts(free bool) (map[string]int, error) {
	ports := make(map[string]int, len(devPorts)+1)
	for k, v := range devPorts {
		ports[k] = v
	}
	ports["redis"] = 0 // redisproc picks one
	if !free {
		return ports, nil
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for k := range devPorts {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find free port: %w", err)
		}
		ls = append(ls, l)
		ports[k] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

func waitReady(ctx context.Context, url string, p *proc) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return errors.New("process exited")
		case <-time.After(100 * time.Millisecond):
		}
	}
}
