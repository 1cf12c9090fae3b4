package inbox

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
)

// rawMessage is a message as the email service sends it, with its
// carenotify id and the given Content-Type and body.
func rawMessage(id, to, contentType, body string) []byte {
	return []byte("From: Carenotify <noreply@carenotify.localhost>\r\nTo: <" + to + ">\r\n" +
		"Subject: Secure message\r\nDate: Thu, 03 Dec 2026 12:00:00 +0000\r\nMessage-ID: <" + id + "@carenotify.localhost>\r\n" +
		"X-Carenotify-Message-Id: " + id + "\r\nMIME-Version: 1.0\r\nContent-Type: " + contentType + "\r\n\r\n" + body)
}

func sign(t *testing.T, key ed25519.PrivateKey, selector string, msg []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := dkim.Sign(&out, bytes.NewReader(msg), &dkim.SignOptions{
		Domain: "carenotify.localhost", Selector: selector, Signer: key,
		HeaderKeys: []string{"From", "To", "Subject", "Date", "Message-ID", "Content-Type"},
	}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// sendRaw sends raw over STARTTLS with a go-smtp client.
func (s testSMTP) sendRaw(t *testing.T, to string, raw []byte) {
	t.Helper()
	c, err := smtp.DialStartTLS(s.addr, &tls.Config{RootCAs: s.ca.Pool, ServerName: "localhost", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendMail("bounces@carenotify.localhost", []string{to}, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
}

func TestShowsHowEachMessageTravelled(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, unknown, _ := ed25519.GenerateKey(rand.Reader)
	in := New()
	in.SetDKIMKeys(map[string]string{"dev._domainkey.carenotify.localhost": "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)})
	srv := startSMTP(t, in, true)

	smimeType := `application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"`
	pgpType := `multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b1"`
	pgpBody := "--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--b1\r\nContent-Type: application/octet-stream\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nwcBMA0==\r\n-----END PGP MESSAGE-----\r\n--b1--\r\n"
	tampered := sign(t, key, "dev", rawMessage("m-fail", "fail@example.org", "text/plain", "Hello\r\n"))
	tampered = bytes.Replace(tampered, []byte("Hello"), []byte("Hallo"), 1)
	tests := []struct {
		name, to       string
		raw            []byte
		wantDKIM       string
		wantEncryption string
	}{
		{name: "S/MIME, signed", to: "smime@example.org", raw: sign(t, key, "dev", rawMessage("m-smime", "smime@example.org", smimeType, "MIAGCSqGSIb3DQEHA6CAMIACAQAxggE=\r\n")),
			wantDKIM: DKIMPass, wantEncryption: EncryptionSMIME},
		{name: "PGP/MIME, signed", to: "pgp@example.org", raw: sign(t, key, "dev", rawMessage("m-pgp", "pgp@example.org", pgpType, pgpBody)),
			wantDKIM: DKIMPass, wantEncryption: EncryptionPGP},
		{name: "altered after signing", to: "fail@example.org", raw: tampered, wantDKIM: DKIMFail},
		{name: "unknown key", to: "unknown@example.org", raw: sign(t, unknown, "other", rawMessage("m-unknown", "unknown@example.org", "text/plain", "Hi\r\n")), wantDKIM: DKIMTempError},
		{name: "unsigned", to: "none@example.org", raw: rawMessage("m-none", "none@example.org", "text/plain", "Hi\r\n"), wantDKIM: DKIMNone},
	}
	// The sender's report of one message comes before it, of another after.
	in.RecordDelivery("m-smime", Delivery{TLSVersion: "TLS1.3", TLSVerified: true, NextHop: "localhost", SMIME: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.sendRaw(t, tt.to, tt.raw)
			m := waitFor(t, in, tt.to)
			got := map[string]any{"dkim": m.DKIM, "encryption": m.Encryption, "tls": m.TLSVersion}
			want := map[string]any{"dkim": tt.wantDKIM, "encryption": tt.wantEncryption, "tls": "TLS 1.3"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("travel facts (-want +got):\n%s", diff)
			}
		})
	}
	in.RecordDelivery("m-pgp", Delivery{TLSVersion: "TLS1.3", TLSVerified: false, NextHop: "localhost", PGP: true})

	// The JSON API.
	h := in.Handler()
	resp := get(t, h, http.MethodGet, "/api/messages")
	var list struct {
		Messages []struct {
			To         []string  `json:"to"`
			DKIM       string    `json:"dkim"`
			DKIMDomain string    `json:"dkimDomain"`
			Encryption string    `json:"encryption"`
			TLSVersion string    `json:"tlsVersion"`
			Delivery   *Delivery `json:"delivery"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	byTo := map[string]int{}
	for i, m := range list.Messages {
		byTo[m.To[0]] = i
	}
	smime, pgp, none := list.Messages[byTo["smime@example.org"]], list.Messages[byTo["pgp@example.org"]], list.Messages[byTo["none@example.org"]]
	if smime.Delivery == nil || !smime.Delivery.TLSVerified || !smime.Delivery.SMIME || smime.DKIMDomain != "carenotify.localhost" || smime.Encryption != "smime" {
		t.Errorf("S/MIME message in the API = %+v (delivery %+v)", smime, smime.Delivery)
	}
	if pgp.Delivery == nil || pgp.Delivery.TLSVerified || !pgp.Delivery.PGP || pgp.Encryption != "pgp" {
		t.Errorf("PGP message in the API = %+v (delivery %+v)", pgp, pgp.Delivery)
	}
	if none.Delivery != nil || none.DKIM != "none" {
		t.Errorf("unsigned message in the API = %+v", none)
	}

	// The HTML pages.
	page := readBody(t, get(t, h, http.MethodGet, "/"))
	for _, want := range []string{"Certificate verified", "DKIM", "Encrypted", "S/MIME", "PGP/MIME", "pass (carenotify.localhost)", "fail", "temperror", "not reported"} {
		if !strings.Contains(page, want) {
			t.Errorf("index page lacks %q", want)
		}
	}
	id := ""
	for _, m := range in.Messages() {
		if m.To[0] == "smime@example.org" {
			id = m.ID
		}
	}
	page = readBody(t, get(t, h, http.MethodGet, "/messages/"+id))
	for _, want := range []string{"<th>Certificate verified</th><td>yes (by the sender, delivering to localhost)", "<th>DKIM</th><td>pass (carenotify.localhost)", "<th>Body encrypted</th><td>S/MIME (sender: S/MIME)"} {
		if !strings.Contains(page, want) {
			t.Errorf("message page lacks %q", want)
		}
	}
}

func TestDKIMKeysReturnsACopy(t *testing.T) {
	in := New()
	in.SetDKIMKeys(map[string]string{"dev._domainkey.carenotify.localhost": "v=DKIM1; k=ed25519; p=AAAA"})
	got := in.DKIMKeys()
	if len(got) != 1 || got["dev._domainkey.carenotify.localhost"] != "v=DKIM1; k=ed25519; p=AAAA" {
		t.Fatalf("DKIMKeys() = %v", got)
	}
	got["other._domainkey.example.org"] = "v=DKIM1; p=BBBB"
	if len(in.DKIMKeys()) != 1 {
		t.Error("changing DKIMKeys' result changed the inbox's keys")
	}
}
