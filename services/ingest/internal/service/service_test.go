package service_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/audit/audittest"
	"github.com/carenotify/carenotify/pkg/bus/bustest"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/hl7"
	"github.com/carenotify/carenotify/pkg/hl7/hl7test"
	"github.com/carenotify/carenotify/pkg/log"
	"github.com/carenotify/carenotify/pkg/log/logtest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify/fhirnotifytest"
	"github.com/carenotify/carenotify/services/ingest/internal/service"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// startService runs the whole service against an embedded JetStream
// server, logging through the real PHI-redacting logger into logs.
func startService(t *testing.T, logs io.Writer) *config.Config {
	t.Helper()
	return startServiceWith(t, logs, func(*config.Config) {})
}

// startServiceWith is startService with the configuration adjusted by
// edit before the service starts.
func startServiceWith(t *testing.T, logs io.Writer, edit func(*config.Config)) *config.Config {
	t.Helper()
	ns := bustest.Start(t)
	cfg := &config.Config{
		HTTPListener: listen(t), NATSURL: ns.ClientURL(), RedisURL: storetest.URL(t), LogLevel: slog.LevelDebug,
		ShutdownGrace: time.Second, StreamReplicas: 1, MaxBodyBytes: 1 << 20, PublishTimeout: 2 * time.Second,
		Sources: config.Sources{{Name: "demo", Tenant: "demo", Token: "demo-token"}},
	}
	cfg.KeyringDir, _ = envelopetest.Keyring(t)
	cfg.AuditPseudonymKeyFile, cfg.AuditSigningKeyFile = audittest.Keys(t)
	cfg.HTTPAddr = cfg.HTTPListener.Addr().String()
	cfg.MLLPTimeZone = "UTC"
	edit(cfg)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, cfg, log.New(logs, cfg.LogLevel, "ingest")) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v after cancel", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + cfg.HTTPAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cfg
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("service not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func post(t *testing.T, cfg *config.Config, token, body string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
		"http://"+cfg.HTTPAddr+"/fhir/demo/notifications", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/fhir+json; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func get(t *testing.T, cfg *config.Config, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + cfg.HTTPAddr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestLogsCarryNoPHI runs every kind of notification through the whole
// service and checks that no identifier of the patient reaches the logs.
func TestLogsCarryNoPHI(t *testing.T) {
	logs := &logtest.Buffer{}
	cfg := startService(t, logs)
	booked := string(fhirnotifytest.AppointmentNotification(t, fhirnotifytest.BookedOptions))
	steps := []struct {
		name  string
		token string
		body  string
		want  int
	}{
		{name: "booked", token: "demo-token", body: booked, want: 200},
		{name: "retry", token: "demo-token", body: booked, want: 200},
		{name: "cancelled", token: "demo-token", body: string(fhirnotifytest.AppointmentNotification(t, fhirnotifytest.Options{Status: "cancelled", VersionID: "2"})), want: 200},
		{name: "bad status", token: "demo-token", body: strings.Replace(booked, `"status": "booked"`, `"status": "Chalmers"`, 1), want: 422},
		{name: "bad gender", token: "demo-token", body: strings.Replace(booked, `"gender": "male"`, `"gender": "Peter"`, 1), want: 422},
		{name: "bad date", token: "demo-token", body: strings.Replace(booked, `"start": "2013-12-09T09:00:00Z"`, `"start": "1974-12-25"`, 1), want: 422},
		{name: "patient", token: "demo-token", body: string(fhirnotifytest.ReadCorpus(t, fhirnotifytest.PatientFile)), want: 422},
		{name: "truncated", token: "demo-token", body: booked[:len(booked)/2], want: 400},
		{name: "handshake", token: "demo-token", body: string(fhirnotifytest.ReadCorpus(t, fhirnotifytest.HandshakeBundle)), want: 200},
		{name: "id-only", token: "demo-token", body: string(fhirnotifytest.ReadCorpus(t, fhirnotifytest.AthenaIDOnly)), want: 200},
		{name: "wrong token", token: "Chalmers", body: booked, want: 401},
	}
	for _, s := range steps {
		if got := post(t, cfg, s.token, s.body); got != s.want {
			t.Errorf("%s: POST = %d, want %d", s.name, got, s.want)
		}
	}

	code, metrics := get(t, cfg, "/metrics")
	for _, want := range []string{
		`ingest_notifications_total{outcome="accepted",source="demo",type="event-notification"} 3`,
		`ingest_notifications_total{outcome="accepted",source="demo",type="handshake"} 1`,
		`ingest_notifications_total{outcome="deferred",source="demo",type="event-notification"} 1`,
		`ingest_notifications_total{outcome="rejected",source="demo",type="event-notification"} 3`,
		`ingest_notifications_total{outcome="rejected",source="demo",type="unknown"} 2`,
		`ingest_notifications_total{outcome="unauthenticated",source="unknown",type="unknown"} 1`,
		`ingest_events_published_total{action="booked",kind="appointment",tenant="demo"} 1`,
		`ingest_events_published_total{action="cancelled",kind="appointment",tenant="demo"} 1`,
		`ingest_dead_letters_total{reason="invalid_resource",source="demo"} 3`,
		`ingest_dead_letters_total{reason="malformed_json",source="demo"} 1`,
		`ingest_dead_letters_total{reason="not_a_notification",source="demo"} 1`,
		`ingest_dead_letters_total{reason="payload_not_supported",source="demo"} 1`,
	} {
		if code != 200 || !strings.Contains(metrics, want) {
			t.Errorf("/metrics (%d) lacks %s\n%s", code, want, metrics)
		}
	}
	if code, _ := get(t, cfg, "/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}

	out := logs.String()
	if !strings.Contains(out, `"msg":"event stored"`) || !strings.Contains(out, `"msg":"notification handled"`) {
		t.Fatalf("logs lack the expected lines:\n%s", out)
	}
	for _, phi := range []string{"Chalmers", "Peter", fhirnotifytest.CanaryEmail, "1974-12-25", "(03) 5555 6473", "5555 6473", "demo-token"} {
		if strings.Contains(out, phi) {
			t.Errorf("logs contain %q:\n%s", phi, out)
		}
	}
	// The MRN, not counting digit runs inside timestamps, ports or hex ids.
	if regexp.MustCompile(`(^|[^0-9a-f])12345([^0-9a-f]|$)`).MatchString(out) {
		t.Errorf("logs contain the MRN 12345:\n%s", out)
	}
}

// TestMLLPWired runs the whole service with the MLLP listener on and
// sends an SIU^S12 over a real connection.
func TestMLLPWired(t *testing.T) {
	logs := &logtest.Buffer{}
	ml := listen(t)
	cfg := startServiceWith(t, logs, func(c *config.Config) {
		c.MLLPListener, c.MLLPAddr = ml, ml.Addr().String()
		c.MLLPSource = config.MLLPSource{Name: "demo", Tenant: "demo"}
		c.MLLPReadTimeout, c.MLLPMaxFrameBytes, c.MLLPMaxConns, c.MLLPTimeZone = 5*time.Second, 1<<20, 4, "UTC"
	})
	c := hl7test.Dial(t, cfg.MLLPAddr)
	ack, err := hl7.Parse(c.Send(t, hl7test.Read(t, "SIU_S12/msconv-SIU-S12-01.hl7")))
	if err != nil {
		t.Fatal(err)
	}
	if got := ack.Get("MSA-1"); got != "AA" {
		t.Errorf("ACK %q, want AA", got)
	}
	_, metrics := get(t, cfg, "/metrics")
	if want := `ingest_hl7_messages_total{ack="AA",source="demo",type="SIU^S12"} 1`; !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %s", want)
	}
	out := logs.String()
	for _, phi := range []string{"EVERYMAN", "ADAM", "Josh", "PATID1234"} {
		if strings.Contains(out, phi) {
			t.Errorf("logs contain %q:\n%s", phi, out)
		}
	}
}
