package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Scenario c's Listmonk settings: as many SMTP connections and senders as
// the email service has workers, and no rate limit in effect.
const (
	// listmonkMessageRate is Listmonk's app.message_rate: each of its
	// workers sleeps a second after that many messages, so it is set above
	// any worker's share of the campaign (50,000 / 20 = 2,500).
	listmonkMessageRate = 10000
)

// ListmonkSMTP is where and how the Listmonk leg sends: the sink's address,
// STARTTLS verified against the development CA.
type ListmonkSMTP struct {
	Host string
	Port int
	// CAFile is the PEM CA the sink's certificate chains to; Listmonk gets
	// it as SSL_CERT_FILE (Go's crypto/x509 reads it on Linux), so its
	// STARTTLS verifies the certificate as the email service does.
	CAFile string
	// Conns is the SMTP connection pool size (max_conns) and the number of
	// Listmonk's sending workers (app.concurrency).
	Conns int
}

// Listmonk is a Listmonk server run by the harness on a throwaway
// PostgreSQL, set up for one campaign.
type Listmonk struct {
	// Version is what `listmonk --version` prints.
	Version string

	bin, dir, work string
	pg             *Postgres
	cmd            *exec.Cmd
	done           chan struct{}
	base           string
	token          string
	client         *http.Client
	logFile        *os.File
}

// listmonkAppDir is the directory Listmonk runs in: $LISTMONK_DIR, else
// the binary's own directory. A binary built with `go build` (no assets
// packed in with stuffbin) reads queries/, schema.sql, static/, i18n/ and
// frontend/dist from its working directory.
func listmonkAppDir(bin string) string {
	if d := os.Getenv("LISTMONK_DIR"); d != "" {
		return d
	}
	return filepath.Dir(bin)
}

// StartListmonk creates a PostgreSQL cluster, installs Listmonk's schema
// into it (`--install --yes`, with an API user), writes the settings the
// leg needs into its settings table before it serves (so no reload is
// involved), and starts it on a free loopback port.
func StartListmonk(ctx context.Context, bin, work string, smtp ListmonkSMTP) (_ *Listmonk, err error) {
	bin, err = filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	lm := &Listmonk{bin: bin, dir: listmonkAppDir(bin), work: work, client: &http.Client{Timeout: 30 * time.Second}}
	defer func() {
		if err != nil {
			lm.Stop()
		}
	}()
	if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput(); err == nil {
		lm.Version = strings.TrimSpace(lastLines(string(out), 1))
	}
	if lm.pg, err = StartPostgres(ctx, work); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	lm.base = "http://" + addr
	conf := filepath.Join(work, "config.toml")
	toml := fmt.Sprintf(`[app]
address = %q

[db]
host = %q
port = %d
user = %q
password = ""
database = %q
ssl_mode = "disable"
max_open = 25
max_idle = 25
max_lifetime = "300s"
params = ""
`, addr, lm.pg.SocketDir, lm.pg.Port, lm.pg.User, lm.pg.User)
	if err := os.WriteFile(conf, []byte(toml), 0o600); err != nil {
		return nil, err
	}

	// Install, with a superadmin and an API user whose token Listmonk
	// prints to stderr.
	install := exec.CommandContext(ctx, bin, "--config", conf, "--install", "--yes")
	install.Dir = lm.dir
	install.Env = append(os.Environ(), "LISTMONK_ADMIN_USER=benchadmin",
		"LISTMONK_ADMIN_PASSWORD="+rand.Text(), "LISTMONK_ADMIN_API_USER=bench")
	var out bytes.Buffer
	install.Stdout, install.Stderr = &out, &out
	if err := install.Run(); err != nil {
		return nil, fmt.Errorf("listmonk --install: %w: %s", err, lastLines(out.String(), 3))
	}
	m := regexp.MustCompile(`LISTMONK_ADMIN_API_TOKEN="([^"]+)"`).FindStringSubmatch(out.String())
	if m == nil {
		return nil, fmt.Errorf("listmonk --install printed no API token: %s", lastLines(out.String(), 3))
	}
	lm.token = "bench:" + m[1]

	smtpJSON, err := json.Marshal([]map[string]any{{
		"enabled": true, "host": smtp.Host, "port": smtp.Port, "auth_protocol": "none",
		"username": "", "password": "", "hello_hostname": "", "max_conns": smtp.Conns,
		"idle_timeout": "15s", "wait_timeout": "5s", "max_msg_retries": 2, "msg_retry_delay": "10ms",
		"tls_type": "STARTTLS", "tls_skip_verify": false, "email_headers": []any{}, "from_addresses": []any{},
	}})
	if err != nil {
		return nil, err
	}
	settings := map[string]string{
		"app.concurrency":   strconv.Itoa(smtp.Conns),
		"app.message_rate":  strconv.Itoa(listmonkMessageRate),
		"app.check_updates": "false",
		"app.root_url":      strconv.Quote(lm.base),
		"app.from_email":    strconv.Quote("Demo Clinic <noreply@clinic.example.org>"),
		"smtp":              string(smtpJSON),
	}
	var sql strings.Builder
	for k, v := range settings {
		fmt.Fprintf(&sql, "UPDATE settings SET value = %s::jsonb WHERE key = %s;\n", sqlQuote(v), sqlQuote(k))
	}
	if _, err := lm.pg.Exec(ctx, lm.pg.User, sql.String()); err != nil {
		return nil, fmt.Errorf("listmonk settings: %w", err)
	}

	if lm.logFile, err = os.Create(filepath.Join(work, "listmonk.log")); err != nil {
		return nil, err
	}
	lm.cmd = exec.Command(bin, "--config", conf)
	lm.cmd.Dir = lm.dir
	lm.cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+smtp.CAFile)
	lm.cmd.Stdout, lm.cmd.Stderr = lm.logFile, lm.logFile
	dieWithParent(lm.cmd)
	if err := lm.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start listmonk: %w", err)
	}
	lm.done = make(chan struct{})
	go func() { _ = lm.cmd.Wait(); close(lm.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := lm.call(ctx, http.MethodGet, "/api/health", nil, nil); err == nil {
			return lm, nil
		}
		select {
		case <-lm.done:
			return nil, fmt.Errorf("listmonk exited: %s", lm.logTail())
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("listmonk not healthy after 60s: %s", lm.logTail())
		}
	}
}

func sqlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (lm *Listmonk) logTail() string {
	b, _ := os.ReadFile(filepath.Join(lm.work, "listmonk.log"))
	return lastLines(string(b), 3)
}

// call sends a JSON request to Listmonk's API and decodes the response's
// data field into out (when not nil).
func (lm *Listmonk) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, lm.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "token "+lm.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := lm.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("listmonk %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("listmonk %s %s: %w", method, path, err)
	}
	return json.Unmarshal(env.Data, out)
}

// PrepareCampaign creates a list with n subscribers whose addresses are
// RecipientFor(prefix+i), i from 1, a campaign template that is the
// content alone, and a plain-text campaign to that list with the given
// subject and body, and returns the campaign's id. The list, template and
// campaign go through Listmonk's API; the subscribers are inserted with
// one SQL statement (loading them is not measured, and the API or CSV
// import would only be slower).
func (lm *Listmonk) PrepareCampaign(ctx context.Context, prefix string, n int, subject, body string) (int, error) {
	var list struct {
		ID int `json:"id"`
	}
	if err := lm.call(ctx, http.MethodPost, "/api/lists", map[string]any{
		"name": "bench " + prefix, "type": "private", "optin": "single",
	}, &list); err != nil {
		return 0, err
	}
	var tpl struct {
		ID int `json:"id"`
	}
	if err := lm.call(ctx, http.MethodPost, "/api/templates", map[string]any{
		"name": "content only", "type": "campaign", "body": `{{ template "content" . }}`,
	}, &tpl); err != nil {
		return 0, err
	}
	at := strings.Index(RecipientFor(prefix+"0"), "@")
	local, domain := RecipientFor(prefix + "0")[:at-1], RecipientFor(prefix + "0")[at:]
	sql := fmt.Sprintf(`INSERT INTO subscribers (uuid, email, name, attribs, status)
  SELECT gen_random_uuid(), %s || i || %s, 'Patient ' || i, '{}', 'enabled' FROM generate_series(1, %d) AS i;
INSERT INTO subscriber_lists (subscriber_id, list_id, status)
  SELECT id, %d, 'confirmed' FROM subscribers WHERE email LIKE %s;
ANALYZE;
SELECT count(*) FROM subscriber_lists WHERE list_id = %d;`,
		sqlQuote(local), sqlQuote(domain), n, list.ID, sqlQuote(local+"%"), list.ID)
	got, err := lm.pg.Exec(ctx, lm.pg.User, sql)
	if err != nil {
		return 0, fmt.Errorf("load subscribers: %w", err)
	}
	if got != strconv.Itoa(n) {
		return 0, fmt.Errorf("load subscribers: %s in the list, want %d", got, n)
	}
	var camp struct {
		ID int `json:"id"`
	}
	if err := lm.call(ctx, http.MethodPost, "/api/campaigns", map[string]any{
		"name": "bench " + prefix, "subject": subject, "lists": []int{list.ID},
		"from_email": "Demo Clinic <noreply@clinic.example.org>", "content_type": "plain",
		"messenger": "email", "type": "regular", "body": body, "template_id": tpl.ID,
	}, &camp); err != nil {
		return 0, err
	}
	return camp.ID, nil
}

// StartCampaign sets the campaign running. Listmonk's manager picks it up
// on its next scan (every 5 s).
func (lm *Listmonk) StartCampaign(ctx context.Context, id int) error {
	return lm.call(ctx, http.MethodPut, "/api/campaigns/"+strconv.Itoa(id)+"/status",
		map[string]string{"status": "running"}, nil)
}

// CampaignStatus returns the campaign's status ("running", "finished", ...)
// and Listmonk's sent count.
func (lm *Listmonk) CampaignStatus(ctx context.Context, id int) (string, int, error) {
	var c struct {
		Status string `json:"status"`
		Sent   int    `json:"sent"`
	}
	err := lm.call(ctx, http.MethodGet, "/api/campaigns/"+strconv.Itoa(id), nil, &c)
	return c.Status, c.Sent, err
}

// PIDs returns the Listmonk and PostgreSQL (postmaster) process ids.
func (lm *Listmonk) PIDs() (listmonk, postgres int) {
	if lm.cmd != nil && lm.cmd.Process != nil {
		listmonk = lm.cmd.Process.Pid
	}
	if lm.pg != nil {
		postgres = lm.pg.PID()
	}
	return listmonk, postgres
}

// Stop stops Listmonk and removes its database.
func (lm *Listmonk) Stop() {
	if lm.cmd != nil && lm.cmd.Process != nil && lm.done != nil {
		_ = lm.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-lm.done:
		case <-time.After(15 * time.Second):
			_ = lm.cmd.Process.Kill()
			<-lm.done
		}
	}
	if lm.logFile != nil {
		_ = lm.logFile.Close()
	}
	if lm.pg != nil {
		lm.pg.Stop()
	}
}
