package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/deploy/devstack/demo"
	"github.com/carenotify/carenotify/deploy/devstack/inbox"
	"github.com/carenotify/carenotify/deploy/devstack/stack"
	"github.com/carenotify/carenotify/pkg/audit"
	"github.com/carenotify/carenotify/pkg/log/logtest"
)

// smsJourney texts the confirmation of every booked appointment.
const smsJourney = `id: appointment-confirmation-sms
purpose: treatment
trigger: appointment.booked
steps:
  - send: sms
    template: appointment-confirmation-sms
`

// TestBookingSMSThenStop: a booked appointment is texted through the
// Twilio stand-in (and shows in the dev inbox); the patient texts STOP;
// the next booking's SMS step is suppressed, and the trail says why.
func TestBookingSMSThenStop(t *testing.T) {
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	jdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(jdir, "sms.yaml"), []byte(smsJourney), 0o600); err != nil {
		t.Fatal(err)
	}
	var out logtest.Buffer
	s, err := stack.Start(ctx, stack.Options{
		Root: root, VarDir: t.TempDir(), FreePorts: true, Output: &out,
		ExtraEnv: map[string][]string{"journey": {"JOURNEY_JOURNEYS_DIR=" + jdir}},
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			s.Stop()
		}
	}
	defer stop()
	endpoint := s.IngestURL + "/fhir/" + stack.DemoSource + "/notifications"

	p := newPatient()
	dd := digits(2)
	national := "(202) 555-01" + dd // a fictional US number, as the EHR writes it
	e164 := "+120255501" + dd
	booking := func(apptID string) []byte {
		q := p
		q.apptID = apptID
		return []byte(strings.ReplaceAll(string(q.booking(t, root)), p.phone, national))
	}
	if code, outcome, err := demo.Post(ctx, endpoint, stack.DemoToken, booking(p.apptID)); err != nil || code != http.StatusOK {
		t.Fatalf("booking = %d %q %v", code, outcome, err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	msgs, err := s.Twilio.WaitMessages(wctx, 1)
	wcancel()
	if err != nil {
		t.Fatalf("%v\nlogs:\n%s", err, out.String())
	}
	text := msgs[0]
	if text.To != e164 || text.From != s.SMSSender || !strings.Contains(text.Body, p.given) || !strings.Contains(text.Body, "Reply STOP") {
		t.Errorf("text to %s from %s (%q), want to %s from %s greeting the patient", text.To, text.From, text.Body, e164, s.SMSSender)
	}
	// The dev inbox lists the text next to emails.
	if _, err := s.Inbox.Wait(ctx, func(m inbox.Message) bool { return m.Kind == inbox.KindSMS && len(m.To) == 1 && m.To[0] == e164 }); err != nil {
		t.Fatal(err)
	}
	// The stand-in posts sent and delivered receipts: the record ends delivered.
	waitDelivered(ctx, t, s)

	// The patient texts STOP: Twilio posts it to the sms service, which
	// answers with a TwiML reply and publishes the opt-out journey applies.
	code, twiml, err := s.Twilio.Inbound(ctx, s.SMSWebhookURL, e164, s.SMSSender, "Stop")
	if err != nil || code != http.StatusOK || !strings.Contains(twiml, "<Message>") {
		t.Fatalf("inbound STOP = %d %q %v", code, twiml, err)
	}
	consentURL := "http://" + s.Addrs["journey"] + "/v1/consent/" + stack.DemoTenant + "/" + p.patientID + "/sms/treatment"
	waitFor(ctx, t, "sms consent revoked", func() bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, consentURL, nil)
		if err != nil {
			return false
		}
		req.Header.Set("Authorization", "Bearer "+stack.DevAdminToken) // the admin API needs a token
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var c struct {
			Consent struct{ State, Source, EvidenceRef string } `json:"consent"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&c)
		return c.Consent.State == "revoked" && c.Consent.Source == "sms-keyword" && strings.HasPrefix(c.Consent.EvidenceRef, "sms-message:SM")
	})

	// The next booking's SMS step is suppressed, and the trail says why.
	if code, outcome, err := demo.Post(ctx, endpoint, stack.DemoToken, booking(p.apptID+"-2")); err != nil || code != http.StatusOK {
		t.Fatalf("second booking = %d %q %v", code, outcome, err)
	}
	js := natsJS(t, s)
	key, err := audit.LoadPseudonymKey(s.AuditKeys.Pseudonym)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "a no_consent decision on sms", func() bool {
		recs, err := audit.Query(ctx, js, audit.Filter{Tenant: stack.DemoTenant, Service: "journey", Action: audit.ActionMessageDecided,
			Patient: p.patientID, PseudonymKey: key})
		if err != nil {
			return false
		}
		for _, r := range recs {
			if r.Outcome == audit.OutcomeSuppressed && r.Reason == "no_consent" && r.Detail["channel"] == "sms" {
				return true
			}
		}
		return false
	})
	var outbound int
	for _, m := range s.Twilio.Messages() {
		if m.To == e164 && m.Direction == "outbound-api" {
			outbound++
		}
	}
	if outbound != 1 {
		t.Errorf("%d texts sent to the patient, want 1 (none after STOP)", outbound)
	}
	stop()
	logs := readLogs(t, s.LogDir)
	for _, id := range append(p.identifiers(), e164, strings.TrimPrefix(e164, "+"), national, p.patientID) {
		if strings.Contains(logs, id) {
			t.Errorf("logs contain the identifier %q", id)
		}
	}
}

// waitDelivered waits until the sms service's DELIVERY events include a
// delivered one.
func waitDelivered(ctx context.Context, t *testing.T, s *stack.Stack) {
	t.Helper()
	js := natsJS(t, s)
	waitFor(ctx, t, "a delivered sms event", func() bool {
		st, err := js.Stream(ctx, "DELIVERY")
		if err != nil {
			return false
		}
		_, err = st.GetLastMsgForSubject(ctx, "delivery."+stack.DemoTenant+".sms.delivered")
		return err == nil
	})
}

func natsJS(t *testing.T, s *stack.Stack) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(s.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// waitFor polls cond until it holds, failing the test as what when ctx
// ends first.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("no %s in time", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
