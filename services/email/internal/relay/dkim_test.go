package relay_test

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	netmail "net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/relay"
	"github.com/carenotify/carenotify/services/email/internal/smtptest"
)

// dkimKey writes key to a PEM file as pemType and returns the file and the
// DNS TXT record that publishes its public half.
func dkimKey(t *testing.T, key crypto.Signer, pemType string) (file, record string) {
	t.Helper()
	var der []byte
	var err error
	if pemType == "RSA PRIVATE KEY" {
		der = x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))
	} else {
		der, err = x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
	}
	file = filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	switch pub := key.Public().(type) {
	case ed25519.PublicKey:
		record = "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	default:
		spki, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		record = "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(spki)
	}
	return file, record
}

func TestDeliverSignsWithDKIM(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		key     crypto.Signer
		pemType string
	}{
		{name: "rsa-sha256 PKCS#8", key: rsaKey, pemType: "PRIVATE KEY"},
		{name: "rsa-sha256 PKCS#1", key: rsaKey, pemType: "RSA PRIVATE KEY"},
		{name: "ed25519-sha256 PKCS#8", key: edKey, pemType: "PRIVATE KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file, record := dkimKey(t, tt.key, tt.pemType)
			key, err := relay.LoadDKIMKey(file)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := relay.NewDKIM("carenotify.localhost", "s2026", key)
			if err != nil {
				t.Fatal(err)
			}
			ca := smtptest.NewCA(t)
			srv := smtptest.Start(t, smtptest.Options{CA: ca})
			r := newRelayWith(t, relay.Options{
				Host: "localhost", Port: srv.Port, RootCAs: ca.Pool, Signer: signer,
				Unsubscribe: func(m app.Message) string { return "https://notify.example.org/u/tok-" + m.ID },
			})
			out := verified(message())
			out.Unsubscribe = true
			if _, err := r.Deliver(t.Context(), out); err != nil {
				t.Fatalf("Deliver() = %v", err)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("received %d messages, want 1", len(msgs))
			}
			var lookups []string
			vs, err := dkim.VerifyWithOptions(bytes.NewReader(msgs[0].Data), &dkim.VerifyOptions{
				LookupTXT: func(domain string) ([]string, error) {
					lookups = append(lookups, domain)
					if domain != "s2026._domainkey.carenotify.localhost" {
						return nil, errors.New("no such record")
					}
					return []string{record}, nil
				},
			})
			if err != nil || len(vs) != 1 {
				t.Fatalf("Verify() = %v, %v; want one verification", vs, err)
			}
			if vs[0].Err != nil {
				t.Fatalf("signature does not verify: %v", vs[0].Err)
			}
			if vs[0].Domain != "carenotify.localhost" {
				t.Errorf("d= %q", vs[0].Domain)
			}
			signed := map[string]bool{}
			for _, k := range vs[0].HeaderKeys {
				signed[strings.ToLower(k)] = true
			}
			for _, k := range []string{"from", "to", "subject", "date", "message-id", "mime-version", "content-type", "list-unsubscribe", "list-unsubscribe-post"} {
				if !signed[k] {
					t.Errorf("header %s is not signed (h=%v)", k, vs[0].HeaderKeys)
				}
			}
			if diff := cmp.Diff([]string{"s2026._domainkey.carenotify.localhost"}, slices.Compact(lookups)); diff != "" {
				t.Errorf("lookups (-want +got):\n%s", diff)
			}
			pm, err := netmail.ReadMessage(bytes.NewReader(msgs[0].Data))
			if err != nil {
				t.Fatal(err)
			}
			gotHeaders := map[string]string{
				"List-Unsubscribe":      pm.Header.Get("List-Unsubscribe"),
				"List-Unsubscribe-Post": pm.Header.Get("List-Unsubscribe-Post"),
			}
			wantHeaders := map[string]string{
				"List-Unsubscribe":      "<https://notify.example.org/u/tok-" + testID + ">",
				"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
			}
			if diff := cmp.Diff(wantHeaders, gotHeaders); diff != "" {
				t.Errorf("unsubscribe headers (-want +got):\n%s", diff)
			}

			// An altered body no longer verifies.
			tampered := bytes.Replace(msgs[0].Data, []byte("Tuesday"), []byte("Friday"), 1)
			vs, err = dkim.VerifyWithOptions(bytes.NewReader(tampered), &dkim.VerifyOptions{
				LookupTXT: func(string) ([]string, error) { return []string{record}, nil },
			})
			if err != nil || len(vs) != 1 || vs[0].Err == nil {
				t.Errorf("Verify(tampered) = %v, %v; want a failed signature", vs, err)
			}
		})
	}
}

func TestLoadDKIMKeyErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "x")
	if err := os.WriteFile(notPEM, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	cert := filepath.Join(dir, "c")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		give string
		want string
	}{
		{name: "missing", give: filepath.Join(dir, "nope"), want: "read dkim key"},
		{name: "not PEM", give: notPEM, want: "no PEM block"},
		{name: "a certificate", give: cert, want: "not a private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := relay.LoadDKIMKey(tt.give)
			if err == nil {
				_, err = relay.NewDKIM("example.org", "s", key)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}
