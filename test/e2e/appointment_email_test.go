package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"math/big"
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
	"github.com/carenotify/carenotify/pkg/corpus"
	"github.com/carenotify/carenotify/pkg/log/logtest"
)

// patient holds the canary identifiers the test seeds into a corpus
// notification; none of them may appear in any log or metric.
type patient struct {
	apptID, patientID, email, family, given, mrn, birthDate, phone string
}

func newPatient() patient {
	s := strings.ToLower(rand.Text()[:12])
	return patient{
		apptID:    "e2e-appt-" + s,
		patientID: "e2e-pat-" + s,
		email:     "canary." + s + "@example.org",
		family:    "Canaryfamily" + s,
		given:     "Canarygiven" + s,
		mrn:       "MRNCANARY" + s,
		birthDate: canaryDate(),
		phone:     "(03) 7" + digits(3) + " " + digits(4),
	}
}

// booking returns the sample corpus-built notification with the patient's
// canary identifiers in place of the example patient's.
func (p patient) booking(t *testing.T, root string) []byte {
	t.Helper()
	tmpl, err := os.ReadFile(filepath.Join(root, "deploy", "examples", "notifications", "appointment-booked.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := demo.NewBooking(tmpl, p.apptID, p.patientID, p.email)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(
		"Chalmers", p.family,
		`"Peter"`, `"`+p.given+`"`,
		"Peter James "+p.family, p.given+" James "+p.family,
		`"value": "12345"`, `"value": "`+p.mrn+`"`,
		"1974-12-25", p.birthDate,
		"(03) 5555 6473", p.phone,
	).Replace(string(b))
	for _, want := range []string{p.family, p.given, p.mrn, p.email, p.birthDate, p.phone} {
		if !strings.Contains(s, want) {
			t.Fatalf("booking lacks canary %q: the sample notification changed shape", want)
		}
	}
	return []byte(s)
}

func (p patient) identifiers() []string {
	return []string{p.email, p.family, p.given, p.mrn, p.birthDate, p.phone, "Chalmers", "3410 5613"}
}

// canaryDate returns a random birth date between 1900 and 1999.
func canaryDate() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(100*365))
	return time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(n.Int64())).Format(time.DateOnly)
}

// digits returns n random decimal digits.
func digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		d, _ := rand.Int(rand.Reader, big.NewInt(10))
		b[i] = byte('0' + d.Int64())
	}
	return string(b)
}

func repoRoot(t *testing.T) string { return corpus.Root(t) }

func TestAppointmentBookedBecomesOneEmail(t *testing.T) {
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	var out logtest.Buffer
	s, err := stack.Start(ctx, stack.Options{
		Root:      root,
		VarDir:    t.TempDir(),
		FreePorts: true,
		Output:    &out,
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

	// Handshake: accepted, no event, no email.
	handshake, err := os.ReadFile(filepath.Join(root, "deploy", "examples", "notifications", "handshake.json"))
	if err != nil {
		t.Fatal(err)
	}
	if code, outcome, err := demo.Post(ctx, endpoint, stack.DemoToken, handshake); err != nil || code != http.StatusOK {
		t.Fatalf("handshake = %d %q %v, want 200", code, outcome, err)
	}

	// The same booking posted twice (an EHR retry): exactly one email.
	first := newPatient()
	body := first.booking(t, root)
	for i := range 2 {
		if code, outcome, err := demo.Post(ctx, endpoint, stack.DemoToken, body); err != nil || code != http.StatusOK {
			t.Fatalf("post %d = %d %q %v, want 200", i+1, code, outcome, err)
		}
	}
	// A wrong token is refused and sends nothing.
	if code, _, err := demo.Post(ctx, endpoint, "not-the-token", newPatient().booking(t, root)); err != nil || code != http.StatusUnauthorized {
		t.Errorf("wrong token = %d %v, want 401", code, err)
	}
	// A malformed body gets a 4xx OperationOutcome and sends nothing.
	code, outcome, err := demo.Post(ctx, endpoint, stack.DemoToken, []byte(`{"resourceType":"Bundle","type":"history","entry":[`))
	if err != nil || code < 400 || code > 499 || outcome == "" {
		t.Errorf("malformed = %d %q %v, want 4xx with an OperationOutcome", code, outcome, err)
	}

	msgs, err := demo.WaitForEmail(ctx, s.InboxURL, first.email, 60*time.Second)
	if err != nil {
		t.Fatalf("%v\nlogs:\n%s", err, out.String())
	}
	got := msgs[0]
	if len(got.To) != 1 || got.To[0] != first.email {
		t.Errorf("email to %q, want %q", got.To, first.email)
	}
	if want := "Your appointment on Monday, December 9, 2013"; got.Subject != want {
		t.Errorf("subject = %q, want %q", got.Subject, want)
	}
	if !got.TLS {
		t.Error("email crossed the SMTP hop without TLS")
	}
	if !strings.Contains(got.Text, first.given) {
		t.Error("email text does not greet the patient by given name")
	}
	// The dev inbox shows how it travelled: DKIM it checked itself, and
	// the sender's own account (certificate verified, not encrypted: the
	// patient has no key on record) from the DELIVERY event.
	travel := func() (inbox.Message, bool) {
		for _, m := range s.Inbox.Messages() {
			if len(m.To) == 1 && m.To[0] == first.email && m.Delivery != nil {
				return m, true
			}
		}
		return inbox.Message{}, false
	}
	deadline := time.Now().Add(30 * time.Second)
	m, ok := travel()
	for ; !ok && time.Now().Before(deadline); m, ok = travel() {
		time.Sleep(50 * time.Millisecond)
	}
	if !ok {
		t.Errorf("the inbox never got the sender's delivery report")
	} else if m.DKIM != inbox.DKIMPass || !m.Delivery.TLSVerified || m.Delivery.TLSVersion == "" || m.Encryption != "" || m.Delivery.SMIME || m.Delivery.PGP {
		t.Errorf("inbox travel facts: dkim %q (%s), encryption %q, delivery %+v; want pass, verified TLS, not encrypted", m.DKIM, m.DKIMDomain, m.Encryption, *m.Delivery)
	}

	// A second, different booking is a barrier: once it has arrived, a
	// duplicate of the first would have arrived too.
	// The second patient has an S/MIME certificate on record (set
	// through the admin API): the email arrives encrypted.
	second := newPatient()
	certPEM, certFile, keyFile := recipientCert(t, second.email)
	putRecipientKey(t, s, second.email, certPEM)
	if code, outcome, err := demo.Post(ctx, endpoint, stack.DemoToken, second.booking(t, root)); err != nil || code != http.StatusOK {
		t.Fatalf("second booking = %d %q %v", code, outcome, err)
	}
	if _, err := demo.WaitForEmail(ctx, s.InboxURL, second.email, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	checkEncryptedArrival(t, s, second.email, second.given, certFile, keyFile)
	time.Sleep(time.Second)
	if msgs, err = demo.Emails(ctx, s.InboxURL, first.email); err != nil || len(msgs) != 1 {
		t.Errorf("emails to the first patient = %d (%v), want exactly 1", len(msgs), err)
	}
	if all := s.Inbox.Messages(); len(all) != 2 {
		t.Errorf("inbox holds %d messages, want 2 (one per booking)", len(all))
	}

	// No identifier in any service's metrics or logs.
	var metrics strings.Builder
	for name, addr := range s.Addrs {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatalf("%s metrics: %v", name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics.Write(b)
	}
	checkOneClickUnsubscribe(t, s, first, root)
	checkAuditTrail(t, s, first.patientID, second.patientID)
	stop()
	logs := readLogs(t, s.LogDir)
	if !strings.Contains(logs, `"service":"ingest"`) || !strings.Contains(logs, `"service":"email"`) {
		t.Fatalf("service logs missing; got:\n%s", logs)
	}
	// Nor on disk: JetStream's store (events, dead letters, outbox, audit,
	// data keys) and Redis's append-only file.
	for _, p := range []patient{first, second} {
		grepTree(t, s.NATSStoreDir, p.identifiers())
		grepTree(t, s.RedisDir, p.identifiers())
	}
	for _, p := range []patient{first, second} {
		for _, id := range p.identifiers() {
			if strings.Contains(logs, id) {
				t.Errorf("service logs contain patient identifier %q", id)
			}
			if strings.Contains(metrics.String(), id) {
				t.Errorf("metrics contain patient identifier %q", id)
			}
		}
	}
}

// checkOneClickUnsubscribe follows the List-Unsubscribe one-click link of
// the first patient's email (RFC 8058), then books another appointment for
// the same patient: the email channel records the opt-out, journey revokes
// the patient's email consent, and the new booking sends nothing.
func checkOneClickUnsubscribe(t *testing.T, s *stack.Stack, p patient, root string) {
	t.Helper()
	var link string
	for _, m := range s.Inbox.Messages() {
		if len(m.To) == 1 && m.To[0] == p.email {
			if v := m.Headers["List-Unsubscribe"]; len(v) > 0 {
				link = strings.Trim(v[0], "<>")
			}
			if v := m.Headers["List-Unsubscribe-Post"]; len(v) == 0 || v[0] != "List-Unsubscribe=One-Click" {
				t.Errorf("List-Unsubscribe-Post = %q, want one-click", v)
			}
		}
	}
	if link == "" || strings.Contains(link, p.email) || strings.Contains(link, p.patientID) {
		t.Fatalf("List-Unsubscribe link %q: missing, or carries PHI", link)
	}
	resp, err := http.Post(link, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("one-click unsubscribe = %d, want 200", resp.StatusCode)
	}
	// Journey revokes the patient's email consent for treatment messages...
	consentURL := "http://" + s.Addrs["journey"] + "/v1/consent/" + stack.DemoTenant + "/" + p.patientID + "/email/treatment"
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, consentURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+stack.DevAdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.Contains(strings.ToLower(string(body)), "revoked") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consent after one-click unsubscribe = %d %s, want revoked", resp.StatusCode, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// ...so a new appointment for the same patient is decided "no_consent"
	// and sends nothing.
	again := p
	again.apptID = p.apptID + "-second"
	endpoint := s.IngestURL + "/fhir/" + stack.DemoSource + "/notifications"
	if code, outcome, err := demo.Post(t.Context(), endpoint, stack.DemoToken, again.booking(t, root)); err != nil || code != http.StatusOK {
		t.Fatalf("booking after unsubscribe = %d %q %v", code, outcome, err)
	}
	metricsURL := "http://" + s.Addrs["journey"] + "/metrics"
	for !strings.Contains(get(t, metricsURL), `outcome="no_consent"} 1`) {
		if time.Now().After(deadline) {
			t.Fatal("journey never decided no_consent for the unsubscribed patient")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if msgs, err := demo.Emails(t.Context(), s.InboxURL, p.email); err != nil || len(msgs) != 1 {
		t.Errorf("after unsubscribing, emails to the patient = %d (%v), want still 1", len(msgs), err)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// checkAuditTrail verifies every hash chain of the audit trail and finds,
// by the patients' ids (stored only as keyed hashes), each one's event
// and send decision.
func checkAuditTrail(t *testing.T, s *stack.Stack, patients ...string) {
	t.Helper()
	nc, err := nats.Connect(s.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := audit.LoadVerifyKey(s.AuditKeys.Verify)
	if err != nil {
		t.Fatal(err)
	}
	reports, err := audit.VerifyAll(t.Context(), js, pub)
	if err != nil {
		t.Fatalf("verify audit trail: %v", err)
	}
	chains := map[string]bool{}
	for _, r := range reports {
		chains[r.Service] = true
		if !r.OK() {
			t.Errorf("audit chain %s/%s has problems: %+v", r.Tenant, r.Service, r.Problems)
		}
	}
	for _, svc := range []string{"ingest", "journey", "email"} {
		if !chains[svc] {
			t.Errorf("no audit chain for %s; chains: %v", svc, chains)
		}
	}
	sent, err := audit.Query(t.Context(), js, audit.Filter{Tenant: stack.DemoTenant, Service: "email", Action: audit.ActionMessageSent})
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != len(patients) {
		t.Errorf("email audited %d sent messages, want %d", len(sent), len(patients))
	}
	key, err := audit.LoadPseudonymKey(s.AuditKeys.Pseudonym)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range patients {
		recs, err := audit.Query(t.Context(), js, audit.Filter{Tenant: stack.DemoTenant, Patient: p, PseudonymKey: key})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, r := range recs {
			got[r.Service+" "+r.Action+" "+r.Outcome] = true
		}
		for _, want := range []string{"ingest event.received success", "journey message.decided success"} {
			if !got[want] {
				t.Errorf("audit trail of patient lacks %q; has %v", want, got)
			}
		}
	}
}

// grepTree reports the files under dir that contain any of ids.
func grepTree(t *testing.T, dir string, ids []string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if bytes.Contains(data, []byte(id)) {
				t.Errorf("%s holds patient identifier %q in clear", path, id)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Errorf("%s holds no files: nothing was checked", dir)
	}
}

func readLogs(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	for _, name := range stack.Services {
		data, err := os.ReadFile(filepath.Join(dir, name+".log"))
		if err != nil {
			t.Fatalf("read %s log: %v", name, err)
		}
		b.Write(data)
	}
	return b.String()
}
