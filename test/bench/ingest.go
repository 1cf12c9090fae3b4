package bench

import (
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
	"strconv"
	"syscall"
	"time"

	"github.com/carenotify/carenotify/deploy/devstack/demo"
	"github.com/carenotify/carenotify/deploy/devstack/stack"
	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/envelope"
)

// placeholder stands for the per-request id in a notification template;
// NewBooking puts it into the appointment id, the patient id and the
// patient's email address.
const placeholder = "zzbenchidzz"

// Notifications builds unique full-resource appointment notifications
// from the corpus-built sample (deploy/examples/notifications/
// appointment-booked.json): request id becomes appointment bench-appt-<id>,
// patient bench-pat-<id>, email bench.<id>@example.org, so nothing dedupes.
type Notifications struct {
	template []byte
}

// LoadNotifications reads the sample notification under root and runs it
// through demo.NewBooking once, with a placeholder id that Body replaces.
func LoadNotifications(root string) (*Notifications, error) {
	raw, err := os.ReadFile(filepath.Join(root, "deploy", "examples", "notifications", "appointment-booked.json"))
	if err != nil {
		return nil, fmt.Errorf("read sample notification: %w", err)
	}
	tmpl, err := demo.NewBooking(raw, "bench-appt-"+placeholder, "bench-pat-"+placeholder, RecipientFor(placeholder))
	if err != nil {
		return nil, err
	}
	return &Notifications{template: tmpl}, nil
}

// Body returns the notification for id (letters and digits only).
func (n *Notifications) Body(id string) []byte {
	return bytes.ReplaceAll(n.template, []byte(placeholder), []byte(id))
}

// Size is the size of a notification with an id of idLen characters.
func (n *Notifications) Size(idLen int) int {
	return len(n.template) + (idLen-len(placeholder))*bytes.Count(n.template, []byte(placeholder))
}

// RecipientFor is the patient email address of the notification for id.
func RecipientFor(id string) string { return "bench." + id + "@example.org" }

// Poster posts notifications to ingest over HTTP keep-alive connections.
type Poster struct {
	endpoint string
	client   *http.Client
}

// NewPoster returns a Poster for ingest at baseURL (http://host:port) as
// the development stack's demo source, keeping up to conns connections.
func NewPoster(baseURL string, conns int) *Poster {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &Poster{
		endpoint: baseURL + "/fhir/" + stack.DemoSource + "/notifications",
		client:   &http.Client{Transport: tr, Timeout: 30 * time.Second},
	}
}

// accepted is what ingest's OperationOutcome says of a stored event.
var accepted = []byte(`"accepted 1 event(s)"`)

// Post sends one notification and succeeds only on 200 with one event
// stored.
func (p *Poster) Post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Authorization", "Bearer "+stack.DemoToken)
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = io.Copy(&buf, io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(buf.Bytes(), accepted) {
		return fmt.Errorf("ingest answered %d: %.200s", resp.StatusCode, buf.Bytes())
	}
	return nil
}

// Close closes idle connections.
func (p *Poster) Close() { p.client.CloseIdleConnections() }

// BuildIngest builds the ingest service from the checkout at root into dir
// and returns the binary's path.
func BuildIngest(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "ingest")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./services/ingest/cmd/ingest")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build ingest: %w\n%s", err, out)
	}
	return bin, nil
}

// IngestProc is an ingest process started by the harness.
type IngestProc struct {
	// URL is its base URL, http://127.0.0.1:port.
	URL string
	// MLLPAddr is its HL7 v2 MLLP listener, host:port.
	MLLPAddr string
	// Pid is its process id.
	Pid int

	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// StartIngest runs bin against the NATS server at natsURL and the Redis at
// redisURL with the
// development stack's demo source (over HTTP and MLLP) and extraEnv,
// logging to logFile, and waits until it is ready.
func StartIngest(ctx context.Context, bin, natsURL, redisURL, logFile string, extraEnv ...string) (*IngestProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	mllpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	keys, err := devKeys(filepath.Join(filepath.Dir(logFile), "keys"))
	if err != nil {
		_ = logf.Close()
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	mllpAddr := "127.0.0.1:" + strconv.Itoa(mllpPort)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"INGEST_HTTP_ADDR="+addr,
		"INGEST_NATS_URL="+natsURL,
		"INGEST_REDIS_URL="+redisURL,
		"INGEST_SOURCES="+stack.DemoSource+"="+stack.DemoTenant+":"+stack.DemoToken,
		"INGEST_LOG_LEVEL=info",
		"INGEST_KEYRING_DIR="+keys.keyring,
		"INGEST_AUDIT_PSEUDONYM_KEY_FILE="+keys.pseudonym,
		"INGEST_AUDIT_SIGNING_KEY_FILE="+keys.signing,
		"INGEST_MLLP_ADDR="+mllpAddr,
		"INGEST_MLLP_SOURCE="+stack.DemoSource+"="+stack.DemoTenant,
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start ingest: %w", err)
	}
	p := &IngestProc{URL: "http://" + addr, MLLPAddr: mllpAddr, Pid: cmd.Process.Pid, cmd: cmd, done: make(chan struct{}), log: logf}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	if err := waitReady(ctx, p.URL+"/readyz", p.done); err != nil {
		p.Stop()
		return nil, fmt.Errorf("ingest not ready: %w (see %s)", err, logFile)
	}
	return p, nil
}

// keyFiles are the development keys a service needs, as the development
// stack makes them (deploy/devstack/stack, keys.go).
type keyFiles struct {
	keyring, pseudonym, signing string
}

// devKeys creates a keyring with one primary key-encryption key and the
// audit trail's pseudonym and signing keys in dir.
func devKeys(dir string) (keyFiles, error) {
	k := keyFiles{
		keyring:   filepath.Join(dir, "keyring"),
		pseudonym: filepath.Join(dir, "pseudonym.key"),
		signing:   filepath.Join(dir, "audit-signing.key"),
	}
	if err := os.MkdirAll(k.keyring, 0o700); err != nil {
		return k, fmt.Errorf("dev keys: %w", err)
	}
	kid, err := envelope.GenerateKEK(k.keyring)
	if err != nil {
		return k, fmt.Errorf("dev keys: %w", err)
	}
	if err := envelope.SetPrimary(k.keyring, kid); err != nil {
		return k, fmt.Errorf("dev keys: %w", err)
	}
	if err := audit.GeneratePseudonymKey(k.pseudonym); err != nil {
		return k, fmt.Errorf("dev keys: %w", err)
	}
	if _, err := audit.GenerateSigningKey(k.signing); err != nil {
		return k, fmt.Errorf("dev keys: %w", err)
	}
	return k, nil
}

// Stop stops the process with SIGTERM, then SIGKILL after 10s.
func (p *IngestProc) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	_ = p.log.Close()
}

func waitReady(ctx context.Context, url string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return errors.New("process exited")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
