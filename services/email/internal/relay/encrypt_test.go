package relay_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	netmail "net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/recipientkeys"
	"github.com/carenotify/carenotify/services/email/internal/recipientkeys/recipientkeystest"
	"github.com/carenotify/carenotify/services/email/internal/relay"
	"github.com/carenotify/carenotify/services/email/internal/smtptest"
)

// phiWords are in message()'s subject and bodies: none may appear outside
// the encryption.
var phiWords = []string{"appointment", "Tuesday"}

// deliverEncrypted sends message() encrypted for key over a verified
// STARTTLS session to a test relay, DKIM-signed, and returns what the
// relay received and the transport.
func deliverEncrypted(t *testing.T, key app.RecipientKey) ([]byte, app.Transport, string) {
	t.Helper()
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	file, record := dkimKey(t, edKey, "PRIVATE KEY")
	dk, err := relay.LoadDKIMKey(file)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := relay.NewDKIM("carenotify.localhost", "s2026", dk)
	if err != nil {
		t.Fatal(err)
	}
	ca := smtptest.NewCA(t)
	srv := smtptest.Start(t, smtptest.Options{CA: ca})
	r := newRelayWith(t, relay.Options{Host: "localhost", Port: srv.Port, RootCAs: ca.Pool, Signer: signer})
	out := verified(message())
	out.Key, out.Subject = &key, "Secure message"
	tr, err := r.Deliver(t.Context(), out)
	if err != nil {
		t.Fatalf("Deliver() = %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].TLS == nil {
		t.Fatalf("relay received %d messages (TLS %v), want 1 over TLS", len(msgs), len(msgs) == 1 && msgs[0].TLS != nil)
	}
	return msgs[0].Data, tr, record
}

// checkOuter checks the outer message: DKIM verifies, the outer Subject
// is the encrypted subject, the routing headers are kept, no PHI of the
// subject or bodies is outside, and its Content-Type is wantType.
func checkOuter(t *testing.T, data []byte, record, wantType string) *netmail.Message {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(data), &dkim.VerifyOptions{
		LookupTXT: func(string) ([]string, error) { return []string{record}, nil },
	})
	if err != nil || len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("DKIM of the outer message: %v, %+v", err, vs)
	}
	pm, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, k := range []string{"Subject", "To", "Message-Id", "X-Carenotify-Message-Id", "Mime-Version"} {
		got[k] = pm.Header.Get(k)
	}
	want := map[string]string{
		"Subject": "Secure message", "To": "<" + rcpt + ">", "Message-Id": "<" + testID + "@carenotify.localhost>",
		"X-Carenotify-Message-Id": testID, "Mime-Version": "1.0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outer headers (-want +got):\n%s", diff)
	}
	if mt, _, _ := mime.ParseMediaType(pm.Header.Get("Content-Type")); mt != wantType {
		t.Errorf("outer Content-Type = %q, want %s", pm.Header.Get("Content-Type"), wantType)
	}
	for _, w := range phiWords {
		if bytes.Contains(data, []byte(w)) {
			t.Errorf("%q appears outside the encryption", w)
		}
	}
	return pm
}

// checkInner checks the decrypted entity: the protected headers (real
// Subject), multipart/alternative with both bodies.
func checkInner(t *testing.T, inner []byte) {
	t.Helper()
	pm, err := netmail.ReadMessage(bytes.NewReader(inner))
	if err != nil {
		t.Fatalf("decrypted entity does not parse: %v\n%s", err, inner)
	}
	if got := pm.Header.Get("Subject"); got != "Your appointment" {
		t.Errorf("inner Subject = %q, want the real one", got)
	}
	if got := pm.Header.Get("To"); got != "<"+rcpt+">" {
		t.Errorf("inner To = %q", got)
	}
	_, params, _ := mime.ParseMediaType(pm.Header.Get("Content-Type"))
	if params["protected-headers"] != "v1" {
		t.Errorf("inner Content-Type = %q, want protected-headers=v1", pm.Header.Get("Content-Type"))
	}
	bodies := alternatives(t, pm)
	wantBodies := map[string]string{"text/plain": "See you Tuesday.", "text/html": "<p>See you <b>Tuesday</b>.</p>"}
	if diff := cmp.Diff(wantBodies, bodies); diff != "" {
		t.Errorf("inner bodies (-want +got):\n%s", diff)
	}
}

func TestDeliverSMIMEDecryptsWithOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	rk := recipientkeystest.NewSMIME(t, recipientkeystest.Options{}, rcpt)
	data, tr, record := deliverEncrypted(t, app.RecipientKey{Kind: app.KeySMIME, Data: rk.Cert.Raw})
	if !tr.SMIME || tr.PGP || !tr.TLSVerified {
		t.Errorf("transport = %+v, want smime over verified TLS", tr)
	}
	pm := checkOuter(t, data, record, "application/pkcs7-mime")
	_, params, _ := mime.ParseMediaType(pm.Header.Get("Content-Type"))
	if params["smime-type"] != "enveloped-data" {
		t.Errorf("smime-type = %q", params["smime-type"])
	}

	in := filepath.Join(t.TempDir(), "msg.eml")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), openssl, "cms", "-decrypt", "-in", in, "-recip", rk.CertFile, "-inkey", rk.KeyFile)
	cmd.Stderr = &stderr
	inner, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl cms -decrypt: %v\n%s", err, stderr.String())
	}
	checkInner(t, inner)

	// Another recipient's key does not decrypt it.
	other := recipientkeystest.NewSMIME(t, recipientkeystest.Options{}, "someone@else.example.org")
	cmd = exec.CommandContext(t.Context(), openssl, "cms", "-decrypt", "-in", in, "-recip", other.CertFile, "-inkey", other.KeyFile)
	if out, err := cmd.Output(); err == nil && bytes.Contains(out, []byte("Tuesday")) {
		t.Error("another recipient's key decrypted the message")
	}
}

func TestDeliverPGPMIMEDecrypts(t *testing.T) {
	rk := recipientkeystest.NewPGP(t, rcpt, 0)
	key, _, err := recipientkeys.ParsePGP(rk.PublicArmored, timeNowPlus())
	if err != nil {
		t.Fatal(err)
	}
	data, tr, record := deliverEncrypted(t, app.RecipientKey{Kind: app.KeyPGP, Data: key})
	if !tr.PGP || tr.SMIME || !tr.TLSVerified {
		t.Errorf("transport = %+v, want pgp over verified TLS", tr)
	}
	pm := checkOuter(t, data, record, "multipart/encrypted")
	_, params, _ := mime.ParseMediaType(pm.Header.Get("Content-Type"))
	if params["protocol"] != "application/pgp-encrypted" {
		t.Errorf("protocol = %q", params["protocol"])
	}
	// RFC 3156 §4: the version part, then the encrypted part.
	mr := multipart.NewReader(pm.Body, params["boundary"])
	var parts [][]byte
	var types []string
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types, parts = append(types, ct), append(parts, b)
	}
	if diff := cmp.Diff([]string{"application/pgp-encrypted", "application/octet-stream"}, types); diff != "" {
		t.Fatalf("parts (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(parts[0]), "Version: 1") {
		t.Errorf("version part = %q", parts[0])
	}
	blk, err := armor.Decode(bytes.NewReader(parts[1]))
	if err != nil || blk.Type != "PGP MESSAGE" {
		t.Fatalf("encrypted part is not an armored PGP MESSAGE: %v", err)
	}
	md, err := openpgp.ReadMessage(blk.Body, openpgp.EntityList{rk.Entity}, nil, nil)
	if err != nil {
		t.Fatalf("decrypt with the recipient key: %v", err)
	}
	inner, err := io.ReadAll(md.UnverifiedBody)
	if err != nil {
		t.Fatalf("read decrypted body (integrity check): %v", err)
	}
	checkInner(t, inner)

	other := recipientkeystest.NewPGP(t, "someone@else.example.org", 0)
	blk, _ = armor.Decode(bytes.NewReader(parts[1]))
	if _, err := openpgp.ReadMessage(blk.Body, openpgp.EntityList{other.Entity}, nil, nil); err == nil {
		t.Error("another recipient's key opened the message")
	}

	// gpg, when installed, decrypts it too.
	gpg, err := exec.LookPath("gpg")
	if err != nil {
		t.Log("gpg not installed; decrypted with go-crypto only")
		return
	}
	home := t.TempDir()
	run := func(stdin []byte, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(t.Context(), gpg, append([]string{"--homedir", home, "--batch", "--quiet", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, errors.New(err.Error() + ": " + stderr.String())
		}
		return out, nil
	}
	if _, err := run(rk.SecretArmored, "--import"); err != nil {
		t.Fatalf("gpg --import: %v", err)
	}
	inner, err = run(parts[1], "--decrypt")
	if err != nil {
		t.Fatalf("gpg --decrypt: %v", err)
	}
	checkInner(t, inner)
}

func TestDeliverUnusableKeyFailsNotSentInClear(t *testing.T) {
	ca := smtptest.NewCA(t)
	srv := smtptest.Start(t, smtptest.Options{CA: ca})
	r := newRelayWith(t, relay.Options{Host: "localhost", Port: srv.Port, RootCAs: ca.Pool})
	for _, kind := range []app.KeyKind{app.KeySMIME, app.KeyPGP, "other"} {
		out := verified(message())
		out.Key, out.Subject = &app.RecipientKey{Kind: kind, Data: []byte("garbage")}, "Secure message"
		_, err := r.Deliver(t.Context(), out)
		var de *app.DeliveryError
		if !errors.As(err, &de) || !de.Permanent || de.Reason != app.ReasonEncryption {
			t.Errorf("%s: Deliver() = %v, want a permanent %s error", kind, err, app.ReasonEncryption)
		}
	}
	if mail, _, _ := srv.Commands(); mail != 0 {
		t.Errorf("relay saw %d MAIL FROM, want none", mail)
	}
}
