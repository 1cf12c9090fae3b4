package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/audit/audittest"
	"github.com/carenotify/carenotify/pkg/bus/bustest"
	"github.com/carenotify/carenotify/pkg/corpus"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
)

// ingestAdminToken is the INGEST_ADMIN_TOKEN of the ingest under test.
const ingestAdminToken = "ingest-admin-token-for-ctl-tests"

// canaryName is a synthetic patient name in a dead letter's body; the
// CLI must never print it.
const canaryName = "Zebulon-CANARY-dl-7f3a"

// startIngest builds the real ingest binary from the workspace and runs
// it against an embedded NATS server and a throwaway Redis, with an admin
// token and no MLLP listener. It returns ingest's base URL.
func startIngest(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the ingest binary")
	}
	root := corpus.Root(t)
	bin := filepath.Join(t.TempDir(), "ingest")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./services/ingest/cmd/ingest")
	build.Dir = root
	// The workspace builds ingest even when this module's tests run with
	// GOWORK=off.
	build.Env = append(os.Environ(), "GOWORK="+filepath.Join(root, "go.work"))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build ingest: %v\n%s", err, out)
	}
	ns := bustest.Start(t)
	keyring, _ := envelopetest.Keyring(t)
	pseudonym, signing := audittest.Keys(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"INGEST_HTTP_ADDR=127.0.0.1:0", "INGEST_MLLP_ADDR=off",
		"INGEST_NATS_URL="+ns.ClientURL(), "INGEST_REDIS_URL="+storetest.URL(t),
		"INGEST_SOURCES=demo=demo:demo-token", "INGEST_ADMIN_TOKEN="+ingestAdminToken,
		"INGEST_KEYRING_DIR="+keyring, "INGEST_AUDIT_PSEUDONYM_KEY_FILE="+pseudonym, "INGEST_AUDIT_SIGNING_KEY_FILE="+signing)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	// The address ingest listens on is in its "ingest started" line.
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				HTTP string `json:"http"`
			}
			if !sent && json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "ingest started" {
				addr <- line.HTTP
				sent = true
			}
		}
		if !sent {
			close(addr)
		}
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatal("ingest exited before it started")
		}
		return "http://" + a
	case <-time.After(time.Minute):
		t.Fatal("ingest did not start within a minute")
	}
	return ""
}

// postNotification posts body to the demo source's notification endpoint.
func postNotification(t *testing.T, base, body string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/fhir/demo/notifications", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer demo-token")
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// runDeadLetters runs carenotifyctl dead-letters args against base with
// token in the environment.
func runDeadLetters(t *testing.T, base, token string, args ...string) (string, error) {
	t.Helper()
	t.Setenv("CARENOTIFY_INGEST_ADMIN_TOKEN", token)
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append(append([]string{"dead-letters"}, args...), "--ingest-url", base))
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

func TestDeadLettersListAndReplay(t *testing.T) {
	base := startIngest(t)
	var printed strings.Builder
	run := func(token string, args ...string) (string, error) {
		out, err := runDeadLetters(t, base, token, args...)
		printed.WriteString(out)
		return out, err
	}
	// Two inputs ingest keeps on EHR_DEAD: not JSON, and JSON that is no
	// notification; both carry the canary name.
	if got := postNotification(t, base, `{"resourceType":"Bundle","note":"`+canaryName); got != http.StatusBadRequest {
		t.Fatalf("malformed notification = %d, want 400", got)
	}
	if got := postNotification(t, base, `{"resourceType":"Patient","name":[{"family":"`+canaryName+`"}]}`); got != http.StatusUnprocessableEntity {
		t.Fatalf("a Patient posted as a notification = %d, want 422", got)
	}

	out, err := run(ingestAdminToken, "list")
	if err != nil {
		t.Fatalf("list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "SEQ") || lines[3] != "2 dead letter(s)" {
		t.Fatalf("list printed:\n%s\nwant a header, 2 letters and a count", out)
	}
	for i, reason := range []string{"malformed_json", "not_a_notification"} {
		if f := strings.Fields(lines[i+1]); len(f) != 6 || f[2] != "demo" || f[3] != "demo" || f[4] != "fhir-notification" || f[5] != reason {
			t.Errorf("letter %d: %q, want tenant demo, source demo, fhir-notification, %s", i+1, lines[i+1], reason)
		}
	}
	jsonOut, err := run(ingestAdminToken, "list", "--json", "--source", "demo", "--limit", "1")
	if err != nil {
		t.Fatalf("list --json: %v\n%s", err, jsonOut)
	}
	var listed struct {
		DeadLetters []deadLetter `json:"deadLetters"`
	}
	if err := json.Unmarshal([]byte(jsonOut), &listed); err != nil || len(listed.DeadLetters) != 1 || listed.DeadLetters[0].Reason != "malformed_json" {
		t.Fatalf("list --json --limit 1 = %s (%v), want the first letter", jsonOut, err)
	}
	seq := listed.DeadLetters[0].Seq

	// Replaying the malformed one: the same 400 as the sender got, no
	// event, and no second copy kept.
	out, err = run(ingestAdminToken, "replay", "--id", jsonNum(seq))
	if err != nil {
		t.Fatalf("replay --id: %v\n%s", err, out)
	}
	if !strings.Contains(out, "demo fhir-notification: status 400 (error structure:") || !strings.HasSuffix(strings.TrimSpace(out), "0 event(s) stored") {
		t.Errorf("replay --id printed %q", out)
	}
	out, err = run(ingestAdminToken, "replay", "--all")
	if err != nil {
		t.Fatalf("replay --all: %v\n%s", err, out)
	}
	if n := strings.Count(out, "event(s) stored"); n != 2 || !strings.Contains(out, "status 422") {
		t.Errorf("replay --all printed %q, want 2 replays, one 422", out)
	}
	// Replays that fail again are not kept twice.
	if out, _ := run(ingestAdminToken, "list"); !strings.Contains(out, "2 dead letter(s)") {
		t.Errorf("after replays list printed %q, want still 2", out)
	}

	for _, tt := range []struct {
		name    string
		token   string
		args    []string
		wantErr string
	}{
		{name: "wrong token", token: "not-the-token", args: []string{"list"}, wantErr: "ingest refused the admin token"},
		{name: "no token", token: "", args: []string{"list"}, wantErr: "no admin token"},
		{name: "unknown seq", token: ingestAdminToken, args: []string{"replay", "--id", "9999"}, wantErr: "no such dead letter"},
		{name: "neither id nor all", token: ingestAdminToken, args: []string{"replay"}, wantErr: "give --id <seq> or --all"},
		{name: "bad limit", token: ingestAdminToken, args: []string{"list", "--limit", "5000"}, wantErr: "ingest answered 400: limit must be 1..1000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(tt.token, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v (printed %q), want %q", err, out, tt.wantErr)
			}
		})
	}
	if strings.Contains(printed.String(), canaryName) {
		t.Error("the CLI printed a dead letter's content")
	}
}

func jsonNum(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
