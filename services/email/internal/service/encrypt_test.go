package service_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	netmail "net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	deliveryv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/delivery/v1"
	emailv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/email/v1"
	"github.com/carenotify/carenotify/services/email/internal/recipientkeys/recipientkeystest"
	"github.com/carenotify/carenotify/services/email/internal/smtptest"
)

const adminToken = "service-test-admin-token"

// keysDir writes certs as <dir>/<tenant>/patient-<n>.pem.
func keysDir(t *testing.T, tenant string, certs ...*recipientkeystest.SMIME) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, tenant), 0o700); err != nil {
		t.Fatal(err)
	}
	for i, c := range certs {
		if err := os.WriteFile(filepath.Join(dir, tenant, "patient-"+string(rune('1'+i))+".pem"), c.CertPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// opensslDecrypt decrypts an S/MIME message for c with openssl cms.
func opensslDecrypt(t *testing.T, data []byte, c *recipientkeystest.SMIME) []byte {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	in := filepath.Join(t.TempDir(), "msg.eml")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), openssl, "cms", "-decrypt", "-in", in, "-recip", c.CertFile, "-inkey", c.KeyFile)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl cms -decrypt: %v\n%s", err, stderr.String())
	}
	return out
}

// pgpDecrypt decrypts a PGP/MIME message with the recipient's key.
func pgpDecrypt(t *testing.T, data []byte, k *recipientkeystest.PGP) []byte {
	t.Helper()
	pm, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, _ := mime.ParseMediaType(pm.Header.Get("Content-Type"))
	if mt != "multipart/encrypted" || params["protocol"] != "application/pgp-encrypted" {
		t.Fatalf("Content-Type = %q, want PGP/MIME", pm.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(pm.Body, params["boundary"])
	if _, err := mr.NextPart(); err != nil { // version part
		t.Fatal(err)
	}
	p, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	blk, err := armor.Decode(p)
	if err != nil {
		t.Fatal(err)
	}
	md, err := openpgp.ReadMessage(blk.Body, openpgp.EntityList{k.Entity}, nil, nil)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	inner, err := io.ReadAll(md.UnverifiedBody)
	if err != nil {
		t.Fatal(err)
	}
	return inner
}

// putKey sets a recipient's OpenPGP key through the admin API.
func (h *harness) putKey(t *testing.T, tenant, address string, pgp *recipientkeystest.PGP) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"tenant": tenant, "address": address, "openpgp_public_key": string(pgp.PublicArmored)})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, "http://"+h.cfg.HTTPAddr+"/admin/recipient-keys", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT /admin/recipient-keys = %d %s", resp.StatusCode, b)
	}
}

// checkDecrypted checks a decrypted entity holds the real subject and body.
func checkDecrypted(t *testing.T, inner []byte, req *emailv1.SendRequest) {
	t.Helper()
	pm, err := netmail.ReadMessage(bytes.NewReader(inner))
	if err != nil {
		t.Fatal(err)
	}
	if got := pm.Header.Get("Subject"); got != req.GetSubject() {
		t.Errorf("inner Subject = %q, want %q", got, req.GetSubject())
	}
	if !bytes.Contains(inner, []byte(req.GetTextBody())) {
		t.Errorf("inner entity lacks the text body:\n%s", inner)
	}
}

// TestPHIEncryptedForRecipientKeys: a PHI message to a recipient with an
// S/MIME certificate (from EMAIL_RECIPIENT_KEYS_DIR) goes S/MIME, one with
// an OpenPGP key (set through the admin API) PGP/MIME, both still over
// verified TLS; the record and the sent event say so. A no-phi message is
// not encrypted.
func TestPHIEncryptedForRecipientKeys(t *testing.T) {
	jane, john := "jane.patient@example.org", "john.patient@example.org"
	cert := recipientkeystest.NewSMIME(t, recipientkeystest.Options{}, jane)
	pgp := recipientkeystest.NewPGP(t, john, 0)
	h := setup(t, smtptest.Options{CA: smtptest.NewCA(t)},
		"EMAIL_RECIPIENT_KEYS_DIR="+keysDir(t, "acme", cert), "EMAIL_ADMIN_TOKEN="+adminToken)
	h.run(t)
	h.putKey(t, "acme", john, pgp)

	tests := []struct {
		name    string
		to      string
		want    *deliveryv1.Transport
		decrypt func([]byte) []byte
	}{
		{name: "S/MIME", to: jane, want: &deliveryv1.Transport{TlsVersion: "TLS1.3", TlsVerified: true, NextHop: "localhost", Smime: true},
			decrypt: func(b []byte) []byte { return opensslDecrypt(t, b, cert) }},
		{name: "PGP/MIME", to: john, want: &deliveryv1.Transport{TlsVersion: "TLS1.3", TlsVerified: true, NextHop: "localhost", Pgp: true},
			decrypt: func(b []byte) []byte { return pgpDecrypt(t, b, pgp) }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validRequest("acme", "enc-"+tt.name)
			req.To = tt.to
			resp := h.send(t, req)
			got := h.waitStatus(t, "acme", resp.GetMessageId(), deliveryv1.Status_STATUS_SENT)
			if diff := cmpDiff(tt.want, got.GetTransport()); diff != "" {
				t.Errorf("record transport (-want +got):\n%s", diff)
			}
			if ev := h.waitEvent(t, "acme", "sent"); ev.GetMessageId() == resp.GetMessageId() && cmpDiff(tt.want, ev.GetTransport()) != "" {
				t.Errorf("sent event transport = %v, want %v", ev.GetTransport(), tt.want)
			}
			msgs := h.relay.Wait(i+1, 10*time.Second)
			data := msgs[i].Data
			pm, err := netmail.ReadMessage(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if s := pm.Header.Get("Subject"); s != "Secure message" {
				t.Errorf("outer Subject = %q, want the policy's encrypted_subject", s)
			}
			if bytes.Contains(data, []byte("Tuesday")) {
				t.Error("subject or body text outside the encryption")
			}
			checkDecrypted(t, tt.decrypt(data), req)
		})
	}

	noPHI := validRequest("acme", "no-phi")
	noPHI.To, noPHI.Security = jane, emailv1.Security_SECURITY_NO_PHI
	resp := h.send(t, noPHI)
	got := h.waitStatus(t, "acme", resp.GetMessageId(), deliveryv1.Status_STATUS_SENT)
	if tr := got.GetTransport(); tr.GetSmime() || tr.GetPgp() {
		t.Errorf("no-phi transport = %v, want not encrypted", tr)
	}
	resp2, err := http.Get("http://" + h.cfg.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	for _, want := range []string{`email_encrypted_total{method="smime"} 1`, `email_encrypted_total{method="pgp"} 1`} {
		if !strings.Contains(string(metricsText), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Loading, setting and using keys logs no address or content.
	for _, bad := range []string{jane, john, "jane.patient", "john.patient", "Tuesday", "BEGIN PGP", "BEGIN CERTIFICATE"} {
		if strings.Contains(h.logs.String(), bad) {
			t.Errorf("logs hold %q", bad)
		}
	}
	if !strings.Contains(h.logs.String(), "recipient keys loaded") {
		t.Error("the start-up key load is not logged")
	}
}

// TestEncryptedPHIOverUnverifiedRelay: with a key on record, PHI still
// needs verified TLS by default (held when the relay's certificate does
// not verify); under "encrypted_tls": "opportunistic" it goes encrypted
// over the unverified session, and the record says so.
func TestEncryptedPHIOverUnverifiedRelay(t *testing.T) {
	jane := "jane.patient@example.org"
	cert := recipientkeystest.NewSMIME(t, recipientkeystest.Options{}, jane)
	dir := keysDir(t, "acme", cert)
	policy := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(policy, []byte(`{"tenants": {"open": {"encrypted_tls": "opportunistic"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "open"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "open", "patient-1.pem"), cert.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	h := setup(t, smtptest.Options{CA: smtptest.NewCA(t)}, // the service trusts another CA
		"EMAIL_SMTP_CA_FILE="+smtptest.NewCA(t).CertFile, "EMAIL_RECIPIENT_KEYS_DIR="+dir, "EMAIL_POLICY_FILE="+policy)
	h.run(t)

	req := validRequest("acme", "held")
	req.To = jane
	resp := h.send(t, req)
	got := h.waitStatus(t, "acme", resp.GetMessageId(), deliveryv1.Status_STATUS_HELD)
	if got.GetReason() != "tls_unverified" || !got.GetTransport().GetHeld() || got.GetTransport().GetSmime() {
		t.Errorf("GetStatus() = %v, want held for tls_unverified, not sent encrypted", got)
	}
	if mail, _, _ := h.relay.Commands(); mail != 0 {
		t.Errorf("relay saw %d MAIL FROM, want none", mail)
	}

	req = validRequest("open", "sent")
	req.To = jane
	resp = h.send(t, req)
	got = h.waitStatus(t, "open", resp.GetMessageId(), deliveryv1.Status_STATUS_SENT)
	want := &deliveryv1.Transport{TlsVersion: "TLS1.3", TlsVerified: false, NextHop: "localhost", Smime: true}
	if diff := cmpDiff(want, got.GetTransport()); diff != "" {
		t.Errorf("transport (-want +got):\n%s", diff)
	}
	msgs := h.relay.Wait(1, 10*time.Second)
	if len(msgs) != 1 || msgs[0].TLS == nil || bytes.Contains(msgs[0].Data, []byte("Tuesday")) {
		t.Fatalf("relay received %d messages; want one, over TLS, encrypted", len(msgs))
	}
	checkDecrypted(t, opensslDecrypt(t, msgs[0].Data, cert), req)
}

func cmpDiff(want, got *deliveryv1.Transport) string {
	if want.String() == got.String() {
		return ""
	}
	return "want " + want.String() + "\n got " + got.String()
}

// TestRecordSaysRequireTLS: a PHI message in clear to a relay that offers
// REQUIRETLS is sent with it, and the record and event say so.
func TestRecordSaysRequireTLS(t *testing.T) {
	h := start(t, smtptest.Options{CA: smtptest.NewCA(t), RequireTLS: true})
	resp := h.send(t, validRequest("acme", "rt"))
	got := h.waitStatus(t, "acme", resp.GetMessageId(), deliveryv1.Status_STATUS_SENT)
	want := &deliveryv1.Transport{TlsVersion: "TLS1.3", TlsVerified: true, NextHop: "localhost", RequireTls: true}
	if diff := cmpDiff(want, got.GetTransport()); diff != "" {
		t.Errorf("transport (-want +got):\n%s", diff)
	}
	if ev := h.waitEvent(t, "acme", "sent"); !ev.GetTransport().GetRequireTls() {
		t.Errorf("sent event transport = %v, want require_tls", ev.GetTransport())
	}
}
