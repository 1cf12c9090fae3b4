package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/carenotify/carenotify/deploy/devstack/inbox"
	"github.com/carenotify/carenotify/deploy/devstack/stack"
)

// recipientCert issues a self-signed S/MIME certificate for address and
// returns the certificate and key PEM files.
func recipientCert(t *testing.T, address string) (certPEM []byte, certFile, keyFile string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "e2e recipient"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}, EmailAddresses: []string{address},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPEM, certFile, keyFile
}

// putRecipientKey puts an S/MIME certificate on record through the email
// service's admin API, with the dev stack's admin token.
func putRecipientKey(t *testing.T, s *stack.Stack, address string, certPEM []byte) {
	t.Helper()
	token, err := os.ReadFile(s.EmailAdminTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"tenant": stack.DemoTenant, "address": address, "smime_certificate": string(certPEM)})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, "http://"+s.Addrs["email"]+"/admin/recipient-keys", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+string(bytes.TrimSpace(token)))
	req.Header.Set("Content-Type", "application/json")
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

// checkEncryptedArrival waits until the inbox holds the email to address
// with the sender's report, checks it arrived S/MIME encrypted, DKIM
// signed, over TLS the sender verified, with no greeting in clear, and
// decrypts it with openssl when installed.
func checkEncryptedArrival(t *testing.T, s *stack.Stack, address, given, certFile, keyFile string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var m inbox.Message
	for found := false; !found; {
		for _, x := range s.Inbox.Messages() {
			if len(x.To) == 1 && x.To[0] == address && x.Delivery != nil {
				m, found = x, true
			}
		}
		if !found && time.Now().After(deadline) {
			t.Fatalf("no email to the key holder with a delivery report")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m.Encryption != inbox.EncryptionSMIME || !m.Delivery.SMIME || !m.Delivery.TLSVerified || m.DKIM != inbox.DKIMPass {
		t.Errorf("encrypted email: encryption %q, dkim %q, delivery %+v; want smime, pass, verified TLS", m.Encryption, m.DKIM, *m.Delivery)
	}
	if bytes.Contains(m.Raw, []byte(given)) {
		t.Error("the greeting travelled outside the encryption")
	}
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		return
	}
	in := filepath.Join(t.TempDir(), "msg.eml")
	if err := os.WriteFile(in, m.Raw, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), openssl, "cms", "-decrypt", "-in", in, "-recip", certFile, "-inkey", keyFile).Output()
	if err != nil || !bytes.Contains(out, []byte(given)) {
		t.Errorf("openssl cms -decrypt = %v; the decrypted email greets the patient: %v", err, bytes.Contains(out, []byte(given)))
	}
}
