package service_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/hl7"
	"github.com/carenotify/carenotify/pkg/hl7/hl7test"
	"github.com/carenotify/carenotify/pkg/log/logtest"
	"github.com/carenotify/carenotify/pkg/store/redisproc"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify/fhirnotifytest"
)

// apptSystem is the FHIR identifier system of the placer appointment ids
// the corpus SIU messages send without an assigning authority.
const apptSystem = "https://ghh.example.org/fhir/sid/placer-appointment"

// startBoth runs the service with FHIR and MLLP, the HL7 source mapping
// identifiers without an assigning authority in SCH-1 to apptSystem.
func startBoth(t *testing.T, logs io.Writer, edit func(*config.Config)) *config.Config {
	t.Helper()
	ml := listen(t)
	return startServiceWith(t, logs, func(c *config.Config) {
		c.MLLPListener, c.MLLPAddr = ml, ml.Addr().String()
		c.MLLPSource = config.MLLPSource{Name: "demo-hl7", Tenant: "demo"}
		c.MLLPReadTimeout, c.MLLPMaxFrameBytes, c.MLLPMaxConns, c.MLLPTimeZone = 5*time.Second, 1<<20, 16, "UTC"
		c.MLLPIdentifierSystems = config.IdentifierSystems{"@placer": apptSystem}
		edit(c)
	})
}

// booking is the FHIR notification of the corpus appointment, booked, as
// version 1, with the corpus SIU's placer id as its identifier and its
// start (TQ1-7).
func booking(t *testing.T, o fhirnotifytest.Options) string {
	t.Helper()
	if o.VersionID == "" {
		o.VersionID, o.LastUpdated = "1", "2013-12-01T10:00:00Z"
	}
	if o.Start == "" {
		o.Start = "2021-09-24T09:30:00+02:15"
	}
	o.IdentifierSystem, o.IdentifierValue = apptSystem, "12345"
	return string(fhirnotifytest.AppointmentNotification(t, o))
}

// stored opens every event on EHR_EVENTS.
func stored(t *testing.T, cfg *config.Config) []*eventsv1.ClinicalEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	nc, err := nats.Connect(cfg.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := envelope.NewServiceSealer(ctx, js, cfg.KeyringDir, 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, bus.StreamEHREvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*eventsv1.ClinicalEvent
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := sealer.Open(ctx, m.Data, envelope.Binding{Tenant: "demo", Kind: envelope.KindEHREvent, ID: m.Header.Get(jetstream.MsgIDHeader)})
		if err != nil {
			t.Fatal(err)
		}
		ev := &eventsv1.ClinicalEvent{}
		if err := proto.Unmarshal(plain, ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func summary(evs []*eventsv1.ClinicalEvent) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.GetKind()+"."+ev.GetAction()+" "+ev.GetSubjectRef()+" "+ev.GetSource().GetName())
	}
	return out
}

func sendHL7(t *testing.T, cfg *config.Config, raw []byte) string {
	t.Helper()
	c := hl7test.Dial(t, cfg.MLLPAddr)
	ack, err := hl7.Parse(c.Send(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	return ack.Get("MSA-1") + " " + ack.Get("ERR-3-1")
}

// TestCrossProtocolOneEvent: the corpus SIU^S12 and a FHIR Appointment
// notification naming the same placer appointment id are one booking,
// whichever arrives first; the HL7 cancellation that follows continues the
// subject the appointment was first seen with.
func TestCrossProtocolOneEvent(t *testing.T) {
	s12 := hl7test.Read(t, "SIU_S12/msconv-SIU-S12-01.hl7")
	s15 := hl7test.Read(t, "SIU_S15/msconv-SIU-S15-01.hl7")
	tests := []struct {
		name      string
		fhirFirst bool
		want      []string
	}{
		{name: "FHIR first", fhirFirst: true, want: []string{
			"appointment.booked Appointment/2docs demo", "appointment.cancelled Appointment/2docs demo-hl7"}},
		{name: "HL7 first", want: []string{
			"appointment.booked Appointment/12345 demo-hl7", "appointment.cancelled Appointment/12345 demo-hl7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := startBoth(t, io.Discard, func(*config.Config) {})
			steps := []func(){
				func() {
					if got := post(t, cfg, "demo-token", booking(t, fhirnotifytest.Options{})); got != http.StatusOK {
						t.Fatalf("FHIR booking = %d", got)
					}
				},
				func() {
					if got := sendHL7(t, cfg, s12); got != "AA " {
						t.Fatalf("SIU^S12 ACK = %q", got)
					}
				},
			}
			if !tt.fhirFirst {
				steps[0], steps[1] = steps[1], steps[0]
			}
			for _, step := range steps {
				step()
			}
			if got := sendHL7(t, cfg, s15); got != "AA " {
				t.Fatalf("SIU^S15 ACK = %q", got)
			}
			got := summary(stored(t, cfg))
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("EHR_EVENTS:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestConcurrentArrivalsDecidedOnce sends the same booking many times at
// once by FHIR and by HL7 v2: one request emits the event, every other one
// waits for it and finds no transition, except the HL7 resends, which
// wait for the first copy's stored ACK and are not processed at all. None
// publishes a second time (a JetStream duplicate would mean two requests
// decided from the same state).
func TestConcurrentArrivalsDecidedOnce(t *testing.T) {
	logs := &logtest.Buffer{}
	cfg := startBoth(t, logs, func(*config.Config) {})
	body := booking(t, fhirnotifytest.Options{})
	s12 := hl7test.Read(t, "SIU_S12/msconv-SIU-S12-01.hl7")
	const n = 6
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if got := post(t, cfg, "demo-token", body); got != http.StatusOK {
				t.Errorf("FHIR booking = %d", got)
			}
		})
		wg.Go(func() {
			if got := sendHL7(t, cfg, s12); got != "AA " {
				t.Errorf("SIU^S12 ACK = %q", got)
			}
		})
	}
	wg.Wait()
	if got := summary(stored(t, cfg)); len(got) != 1 || !strings.HasPrefix(got[0], "appointment.booked ") {
		t.Errorf("EHR_EVENTS = %q, want one appointment.booked", got)
	}
	out := logs.String()
	if c := strings.Count(out, `"msg":"event stored"`); c != 1 {
		t.Errorf("%d events stored (published), want 1", c)
	}
	if strings.Contains(out, `"duplicate":true`) {
		t.Error("a request published an event another had published: both decided from the same state")
	}
	if c := strings.Count(out, `"msg":"hl7 message resent"`); c != n-1 {
		t.Errorf("%d HL7 copies answered with the stored ACK, want %d", c, n-1)
	}
	if c := strings.Count(out, `"msg":"no transition"`); c != n {
		t.Errorf("%d requests found no transition, want %d", c, n)
	}
}

// TestRedisDownIsRetryable: with Redis gone, a notification gets 503
// transient with Retry-After and an HL7 message AE with ERR 207; nothing
// is stored and nothing is dead-lettered, so the sender's retry is safe.
func TestRedisDownIsRetryable(t *testing.T) {
	rs, err := redisproc.Start(t.Context(), redisproc.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := startBoth(t, io.Discard, func(c *config.Config) { c.RedisURL = rs.URL })
	rs.Stop()

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+cfg.HTTPAddr+"/fhir/demo/notifications",
		strings.NewReader(booking(t, fhirnotifytest.Options{})))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer demo-token")
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !bytes.Contains(b, []byte(`"transient"`)) {
		t.Errorf("notification with Redis down = %d (Retry-After %q) %s, want 503 transient with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	if got := sendHL7(t, cfg, hl7test.Read(t, "SIU_S12/msconv-SIU-S12-01.hl7")); got != "AE 207" {
		t.Errorf("SIU^S12 with Redis down: ACK %q, want AE 207", got)
	}
	if got := stored(t, cfg); len(got) != 0 {
		t.Errorf("EHR_EVENTS holds %q, want nothing", summary(got))
	}
	_, metrics := get(t, cfg, "/metrics")
	if strings.Contains(metrics, "ingest_dead_letters_total{") {
		t.Errorf("something was dead-lettered with Redis down:\n%s", metrics)
	}
}
