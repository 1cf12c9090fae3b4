package service_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	netmail "net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/google/go-cmp/cmp"

	deliveryv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/delivery/v1"
	emailv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/email/v1"
	"github.com/carenotify/carenotify/services/email/internal/smtptest"
)

// tokenKeyFile writes a random 32-byte token key in base64.
func tokenKeyFile(t *testing.T) string {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "token.key")
	if err := os.WriteFile(file, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// ed25519DKIMKey writes a PKCS#8 Ed25519 key and returns the file and its
// DKIM DNS record.
func ed25519DKIMKey(t *testing.T) (file, record string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
}

func postForm(t *testing.T, u, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(u, "application/x-www-form-urlencoded", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func getPage(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDKIMAndOneClickUnsubscribe(t *testing.T) {
	dkimFile, record := ed25519DKIMKey(t)
	h := setup(t, smtptest.Options{CA: smtptest.NewCA(t)},
		"EMAIL_UNSUBSCRIBE_BASE_URL=http://placeholder.invalid",
		"EMAIL_UNSUBSCRIBE_KEY_FILE="+tokenKeyFile(t),
		"EMAIL_DKIM_KEY_FILE="+dkimFile,
		"EMAIL_DKIM_SELECTOR=s1",
	)
	base := "http://" + h.cfg.HTTPAddr
	h.cfg.UnsubscribeBaseURL = base
	h.run(t)

	// Treatment messages carry no marketing unsubscribe (the default
	// policy): only the marketing one has List-Unsubscribe.
	treatment := validRequest("acme", "treatment-1")
	h.send(t, treatment)
	if msgs := h.relay.Wait(1, 15*time.Second); len(msgs) != 1 || bytes.Contains(msgs[0].Data, []byte("\r\nList-Unsubscribe:")) {
		t.Fatalf("treatment message: %d received, or it carries List-Unsubscribe", len(msgs))
	}
	req := validRequest("acme", "unsubscribe-1")
	req.To = "zz.canary.unsub@example.org"
	req.Purpose = emailv1.Purpose_PURPOSE_MARKETING
	resp := h.send(t, req)
	msgs := h.relay.Wait(2, 15*time.Second)
	if len(msgs) != 2 {
		t.Fatalf("relay received %d messages, want 2", len(msgs))
	}
	msgs = msgs[1:]
	h.waitStatus(t, "acme", resp.GetMessageId(), deliveryv1.Status_STATUS_SENT)

	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msgs[0].Data), &dkim.VerifyOptions{
		LookupTXT: func(domain string) ([]string, error) {
			if domain != "s1._domainkey.carenotify.localhost" {
				t.Errorf("DKIM lookup of %q", domain)
			}
			return []string{record}, nil
		},
	})
	if err != nil || len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("DKIM verification = %v, %v; want one valid signature", vs, err)
	}

	pm, err := netmail.ReadMessage(bytes.NewReader(msgs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	if got := pm.Header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post = %q", got)
	}
	link := strings.TrimSuffix(strings.TrimPrefix(pm.Header.Get("List-Unsubscribe"), "<"), ">")
	if !strings.HasPrefix(link, base+"/u/") || strings.Contains(strings.ToLower(link), "canary") {
		t.Fatalf("List-Unsubscribe link %q", link)
	}
	if _, err := url.Parse(link); err != nil {
		t.Fatal(err)
	}

	// A GET (a link scanner, or the recipient's browser) only shows the
	// confirmation page.
	code, page := getPage(t, link)
	if code != http.StatusOK || !strings.Contains(page, `<form method="post">`) {
		t.Errorf("GET = %d %q, want the confirmation form", code, page)
	}
	if got := h.waitStatus(t, "acme", resp.GetMessageId(), deliveryv1.Status_STATUS_SENT); got.GetReason() != "" {
		t.Errorf("status after GET = %v", got)
	}

	for i := range 2 { // the second POST changes nothing
		if code, body := postForm(t, link, "List-Unsubscribe=One-Click"); code != http.StatusOK {
			t.Fatalf("POST %d = %d %q", i, code, body)
		}
	}
	ev := h.waitEvent(t, "acme", "opted_out")
	gotEv := &deliveryv1.DeliveryEvent{
		MessageId: ev.GetMessageId(), IdempotencyKey: ev.GetIdempotencyKey(), Tenant: ev.GetTenant(),
		Channel: ev.GetChannel(), Status: ev.GetStatus(), Reason: ev.GetReason(),
	}
	wantEv := &deliveryv1.DeliveryEvent{
		MessageId: resp.GetMessageId(), IdempotencyKey: "unsubscribe-1", Tenant: "acme",
		Channel: deliveryv1.Channel_CHANNEL_EMAIL, Status: deliveryv1.Status_STATUS_OPTED_OUT, Reason: "unsubscribe",
	}
	if diff := cmp.Diff(wantEv, gotEv, cmpProto); diff != "" {
		t.Errorf("opted_out event (-want +got):\n%s", diff)
	}
	got := h.waitStatus(t, "acme", resp.GetMessageId(), deliveryv1.Status_STATUS_OPTED_OUT)
	if got.GetReason() != "unsubscribe" || !got.GetTransport().GetTlsVerified() {
		t.Errorf("GetStatus() = %v, want opted_out (unsubscribe) keeping its transport", got)
	}

	tests := []struct {
		name string
		give string
	}{
		{name: "altered token", give: link + "x"},
		{name: "garbage", give: base + "/u/garbage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, body := postForm(t, tt.give, "List-Unsubscribe=One-Click"); code != http.StatusBadRequest || !strings.Contains(body, "not valid") {
				t.Errorf("POST = %d %q, want 400", code, body)
			}
			if code, _ := getPage(t, tt.give); code != http.StatusBadRequest {
				t.Errorf("GET = %d, want 400", code)
			}
		})
	}
	if strings.Contains(h.logs.String(), "canary") {
		t.Error("logs hold the recipient")
	}
}

// The devstack sets none of the optional variables: no List-Unsubscribe,
// no DKIM-Signature, no /u/ route.
func TestOptionalFeaturesOffByDefault(t *testing.T) {
	h := start(t, smtptest.Options{CA: smtptest.NewCA(t)})
	h.send(t, &emailv1.SendRequest{Tenant: "acme", IdempotencyKey: "plain", To: "p@example.org", Subject: "s", TextBody: "b"})
	msgs := h.relay.Wait(1, 15*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("relay received %d messages, want 1", len(msgs))
	}
	pm, err := netmail.ReadMessage(bytes.NewReader(msgs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"List-Unsubscribe", "List-Unsubscribe-Post", "DKIM-Signature"} {
		if v := pm.Header.Get(k); v != "" {
			t.Errorf("%s = %q, want none", k, v)
		}
	}
	if msgs[0].From != "noreply@carenotify.localhost" {
		t.Errorf("MAIL FROM = %q, want the From address", msgs[0].From)
	}
	if code, _ := postForm(t, "http://"+h.cfg.HTTPAddr+"/u/x", ""); code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
		t.Errorf("POST /u/x = %d, want no such route", code)
	}
}

// Workers keep their sessions with the relay: many messages, at most one
// connection per worker (EMAIL_WORKERS=2 in the harness).
func TestWorkersReuseRelayConnections(t *testing.T) {
	h := start(t, smtptest.Options{CA: smtptest.NewCA(t)})
	const n = 20
	for i := range n {
		h.send(t, validRequest("acme", "reuse-"+string(rune('a'+i))))
	}
	if msgs := h.relay.Wait(n, 20*time.Second); len(msgs) != n {
		t.Fatalf("relay received %d messages, want %d", len(msgs), n)
	}
	if got := h.relay.Connections(); got < 1 || got > 2 {
		t.Errorf("relay saw %d connections for %d messages, want 1 or 2 (one per worker)", got, n)
	}
}
