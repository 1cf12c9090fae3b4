package server_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/carenotify/carenotify/pkg/audit/audittest"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/bus/bustest"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/hl7/hl7test"
	"github.com/carenotify/carenotify/pkg/log"
	"github.com/carenotify/carenotify/pkg/log/logtest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/lastseen"
	"github.com/carenotify/carenotify/services/ingest/internal/metrics"
	"github.com/carenotify/carenotify/services/ingest/internal/natsbus"
	"github.com/carenotify/carenotify/services/ingest/internal/server"
)

// deadEnv is a server with dead-letter listing and replay on, over a real
// embedded JetStream, keyring and audit writer.
type deadEnv struct {
	*env
	pub *natsbus.Publisher
}

func newDeadEnv(t *testing.T) *deadEnv {
	t.Helper()
	ns := bustest.Start(t)
	_, js := bustest.Connect(t, ns)
	if err := bus.EnsureStreams(t.Context(), js, bus.EHREvents(1), bus.EHRDead(1)); err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	logger := log.New(logs, slog.LevelDebug, "ingest")
	m := metrics.New(prometheus.NewRegistry())
	sealer := envelopetest.Sealer(t)
	aw, pk := audittest.Writer(t, js, "ingest")
	pub := natsbus.New(js, sealer, 2*time.Second)
	a := app.New(app.Options{
		Publisher: pub, Auditor: aw, Metrics: m, Logger: logger,
		Now:         func() time.Time { return receivedAt },
		DeadLetters: natsbus.NewDeadLetters(js, sealer, 2*time.Second),
		State:       lastseen.New(storetest.Client(t), sealer, pk, lastseen.Options{}),
	})
	mux := http.NewServeMux()
	server.New(server.Options{App: a, Sources: sources, MaxBodyBytes: maxBody, Metrics: m, Logger: logger, AdminToken: adminToken}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &deadEnv{env: &env{url: srv.URL, sealer: sealer, ns: ns, js: js, logs: logs}, pub: pub}
}

func (e *deadEnv) do(t *testing.T, method, path, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

type listed struct {
	Seq    uint64 `json:"seq"`
	Source string `json:"source"`
	Reason string `json:"reason"`
	Input  string `json:"input"`
}

type replayed struct {
	Input   string          `json:"input"`
	Status  int             `json:"status"`
	Outcome json.RawMessage `json:"outcome"`
	ACK     string          `json:"ack"`
	Events  int             `json:"events"`
}

// TestDeadLetterReplay stores three dead letters (a malformed notification
// through the real path, a valid notification stored before the input path
// was recorded, a valid HL7 message), lists them and replays each.
func TestDeadLetterReplay(t *testing.T) {
	e := newDeadEnv(t)
	if got := e.post(t, demo([]byte(`{"resourceType":"Bundle","type":"history","entry":[`))); got.status != http.StatusBadRequest {
		t.Fatalf("malformed notification: status %d, want 400", got.status)
	}
	booked, err := os.ReadFile(filepath.Join("..", "..", "testdata", "appointment-booked-notification.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.pub.PublishDeadLetter(t.Context(), app.DeadLetter{Tenant: "demo", Source: "demo", Reason: "test_old_letter", Body: booked}); err != nil {
		t.Fatal(err)
	}
	siu := hl7test.Read(t, "SIU_S12/msconv-SIU-S12-01.hl7")
	siu = []byte(strings.NewReplacer("\r\n", "\r", "\n", "\r").Replace(string(siu)))
	if err := e.pub.PublishDeadLetter(t.Context(), app.DeadLetter{Tenant: "general", Source: "epic-prod", Reason: "test_hl7", Input: app.InputHL7, Body: siu}); err != nil {
		t.Fatal(err)
	}

	status, body := e.do(t, http.MethodGet, "/admin/dead-letters", adminToken)
	if status != http.StatusOK {
		t.Fatalf("list: status %d: %s", status, body)
	}
	var list struct {
		DeadLetters []listed `json:"deadLetters"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	malformedReason := list.DeadLetters[0].Reason
	want := []listed{
		{Seq: 1, Source: "demo", Reason: malformedReason, Input: app.InputFHIRNotification},
		{Seq: 2, Source: "demo", Reason: "test_old_letter", Input: ""},
		{Seq: 3, Source: "epic-prod", Reason: "test_hl7", Input: app.InputHL7},
	}
	if diff := cmp.Diff(want, list.DeadLetters); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	if strings.Contains(string(body), "Chalmers") || strings.Contains(string(body), "MSH") {
		t.Errorf("list shows a body: %s", body)
	}

	_, body = e.do(t, http.MethodGet, "/admin/dead-letters?source=epic-prod&limit=5", adminToken)
	list.DeadLetters = nil
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.DeadLetters) != 1 || list.DeadLetters[0].Seq != 3 {
		t.Errorf("list ?source=epic-prod = %+v, want seq 3 only", list.DeadLetters)
	}

	tests := []struct {
		name       string
		give       string
		wantInput  string
		wantStatus int
		wantACK    string
		wantEvents int
	}{
		{name: "malformed notification", give: "1", wantInput: app.InputFHIRNotification, wantStatus: http.StatusBadRequest},
		{name: "old letter sniffed as notification", give: "2", wantInput: app.InputFHIRNotification, wantStatus: http.StatusOK, wantEvents: 1},
		{name: "hl7", give: "3", wantInput: app.InputHL7, wantACK: "MSA|AA|MSG00012", wantEvents: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.do(t, http.MethodPost, "/admin/dead-letters/"+tt.give+"/replay", adminToken)
			if status != http.StatusOK {
				t.Fatalf("replay: status %d: %s", status, body)
			}
			var got replayed
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if got.Input != tt.wantInput || got.Status != tt.wantStatus || got.Events != tt.wantEvents ||
				!strings.Contains(got.ACK, tt.wantACK) {
				t.Errorf("replay = %s", body)
			}
			if tt.wantStatus != 0 && !strings.Contains(string(got.Outcome), "OperationOutcome") {
				t.Errorf("replay outcome is not an OperationOutcome: %s", got.Outcome)
			}
		})
	}
	if got := len(e.messages(t, bus.StreamEHREvents)); got != 2 {
		t.Errorf("EHR_EVENTS holds %d events after the replays, want 2", got)
	}
	if strings.Contains(e.logs.String(), "Chalmers") || strings.Contains(e.logs.String(), "EVERYMAN") {
		t.Error("logs contain patient identifiers")
	}
}

// TestDeadLetterAdminErrors checks authentication and lookups.
func TestDeadLetterAdminErrors(t *testing.T) {
	e := newDeadEnv(t)
	tests := []struct {
		name   string
		give   [3]string // method, path, token
		status int
	}{
		{name: "list without token", give: [3]string{http.MethodGet, "/admin/dead-letters", ""}, status: http.StatusUnauthorized},
		{name: "list with a source token", give: [3]string{http.MethodGet, "/admin/dead-letters", "demo-token"}, status: http.StatusUnauthorized},
		{name: "replay without token", give: [3]string{http.MethodPost, "/admin/dead-letters/1/replay", ""}, status: http.StatusUnauthorized},
		{name: "replay unknown seq", give: [3]string{http.MethodPost, "/admin/dead-letters/99/replay", adminToken}, status: http.StatusNotFound},
		{name: "replay bad seq", give: [3]string{http.MethodPost, "/admin/dead-letters/x/replay", adminToken}, status: http.StatusBadRequest},
		{name: "list bad limit", give: [3]string{http.MethodGet, "/admin/dead-letters?limit=0", adminToken}, status: http.StatusBadRequest},
		{name: "list empty", give: [3]string{http.MethodGet, "/admin/dead-letters", adminToken}, status: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, body := e.do(t, tt.give[0], tt.give[1], tt.give[2]); status != tt.status {
				t.Errorf("status = %d, want %d: %s", status, tt.status, body)
			}
		})
	}
}
