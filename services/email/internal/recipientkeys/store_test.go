package recipientkeys_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/recipientkeys"
	"github.com/carenotify/carenotify/services/email/internal/recipientkeys/recipientkeystest"
)

const (
	tenant = "keys-test"
	// canary is a seeded address: it must never appear in Redis in clear.
	canary = "canary.rkey.7731@patient.example.org"
)

var pseudonymKey = bytes.Repeat([]byte{7}, 32)

func TestPutGetKeyDelete(t *testing.T) {
	c := storetest.Client(t)
	s := recipientkeys.New(c, envelopetest.Sealer(t), pseudonymKey, nil)
	ctx := t.Context()
	cert := recipientkeystest.NewSMIME(t, recipientkeystest.Options{}, canary)
	pgp := recipientkeystest.NewPGP(t, canary, 0)

	if k, err := s.Key(ctx, tenant, canary); err != nil || k != nil {
		t.Fatalf("Key() before Put = %v, %v; want nil, nil", k, err)
	}
	rec, err := recipientkeys.NewRecord(canary, cert.CertPEM, pgp.PublicArmored, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Looked up by the normalised address.
	if err := s.Put(ctx, tenant, strings.ToUpper(canary), rec); err != nil {
		t.Fatal(err)
	}
	k, err := s.Key(ctx, tenant, canary)
	if err != nil || k == nil || k.Kind != app.KeySMIME || !bytes.Equal(k.Data, cert.Cert.Raw) {
		t.Fatalf("Key() = %+v, %v; want the S/MIME certificate", k, err)
	}
	if k, _ := s.Key(ctx, "other-tenant", canary); k != nil {
		t.Errorf("Key() of another tenant = %+v, want nil", k)
	}

	// Nothing in Redis names the address, in the key or the value.
	keys := c.Keys(ctx, "*").Val()
	if len(keys) != 1 || keys[0] != s.KeyName(tenant, canary) {
		t.Fatalf("redis keys = %v, want one: %s", keys, s.KeyName(tenant, canary))
	}
	raw := c.Get(ctx, keys[0]).Val()
	for _, bad := range []string{canary, "canary.rkey", "patient.example.org", string(cert.Cert.Raw[:64])} {
		if strings.Contains(keys[0], bad) || strings.Contains(raw, bad) {
			t.Errorf("redis holds %q in clear", bad)
		}
	}

	// Moved to another address's key, the record does not open.
	other := "other@patient.example.org"
	c.Set(ctx, s.KeyName(tenant, other), raw, 0)
	if _, err := s.Key(ctx, tenant, other); err == nil {
		t.Error("Key() of a record moved from another address = nil error, want tampered")
	}

	// Only the OpenPGP key: it is used.
	rec.SMIME = nil
	if err := s.Put(ctx, tenant, canary, rec); err != nil {
		t.Fatal(err)
	}
	if k, err := s.Key(ctx, tenant, canary); err != nil || k == nil || k.Kind != app.KeyPGP {
		t.Fatalf("Key() = %+v, %v; want the OpenPGP key", k, err)
	}

	if ok, err := s.Delete(ctx, tenant, canary); err != nil || !ok {
		t.Fatalf("Delete() = %v, %v", ok, err)
	}
	if _, err := s.Get(ctx, tenant, canary); !errors.Is(err, app.ErrNoKeyRecord) {
		t.Fatalf("Get() after Delete = %v, want ErrNoKeyRecord", err)
	}
	if ok, err := s.Delete(ctx, tenant, canary); err != nil || ok {
		t.Fatalf("second Delete() = %v, %v; want false", ok, err)
	}
}

func TestKeyExpiredOnRecordFallsBack(t *testing.T) {
	c := storetest.Client(t)
	cert := recipientkeystest.NewSMIME(t, recipientkeystest.Options{NotAfter: time.Now().Add(time.Hour)}, canary)
	pgp := recipientkeystest.NewPGP(t, canary, 0)
	now := time.Now().Add(time.Second) // OpenPGP creation times are whole seconds
	clock := now
	s := recipientkeys.New(c, envelopetest.Sealer(t), pseudonymKey, func() time.Time { return clock })
	rec, err := recipientkeys.NewRecord(canary, cert.CertPEM, pgp.PublicArmored, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), tenant, canary, rec); err != nil {
		t.Fatal(err)
	}
	clock = now.Add(2 * time.Hour) // the certificate has expired since
	if k, err := s.Key(t.Context(), tenant, canary); err != nil || k == nil || k.Kind != app.KeyPGP {
		t.Fatalf("Key() = %+v, %v; want the OpenPGP key once the certificate expired", k, err)
	}
	rec.PGP = nil
	if err := s.Put(t.Context(), tenant, canary, rec); err != nil {
		t.Fatal(err)
	}
	if k, err := s.Key(t.Context(), tenant, canary); err != nil || k != nil {
		t.Fatalf("Key() = %+v, %v; want none with only an expired certificate", k, err)
	}
}

func TestNewRecordErrors(t *testing.T) {
	now := time.Now().Add(time.Second)
	good := recipientkeystest.NewSMIME(t, recipientkeystest.Options{}, canary)
	pgp := recipientkeystest.NewPGP(t, canary, 0)
	otherPGP := recipientkeystest.NewPGP(t, "someone@else.example.org", 0)
	expired := recipientkeystest.NewSMIME(t, recipientkeystest.Options{NotAfter: now.Add(-time.Hour)}, canary)
	signOnly := recipientkeystest.NewSMIME(t, recipientkeystest.Options{KeyUsage: x509.KeyUsageDigitalSignature}, canary)
	noAddr := recipientkeystest.NewSMIME(t, recipientkeystest.Options{})
	// Generating the keys can take seconds on a loaded machine: check them at
	// a time after all their creation times (whole seconds in OpenPGP).
	now = time.Now().Add(time.Second)
	var secret bytes.Buffer
	secret.Write(pgp.SecretArmored)
	tests := []struct {
		name       string
		address    string
		smime, pgp []byte
		wantField  string
		wantDesc   string
	}{
		{name: "bad address", address: "Jane <" + canary + ">", smime: good.CertPEM, wantField: "address", wantDesc: "bare address"},
		{name: "no key", address: canary, wantField: "smime_certificate", wantDesc: "is required"},
		{name: "not a certificate", address: canary, smime: []byte("hello"), wantField: "smime_certificate", wantDesc: "not an X.509"},
		{name: "expired", address: canary, smime: expired.CertPEM, wantField: "smime_certificate", wantDesc: "not valid now"},
		{name: "sign only", address: canary, smime: signOnly.CertPEM, wantField: "smime_certificate", wantDesc: "key encipherment"},
		{name: "no address in certificate", address: canary, smime: noAddr.CertPEM, wantField: "smime_certificate", wantDesc: "names no e-mail"},
		{name: "certificate of someone else", address: "x@patient.example.org", smime: good.CertPEM, wantField: "smime_certificate", wantDesc: "does not name"},
		{name: "not a pgp key", address: canary, pgp: []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n-----END PGP PUBLIC KEY BLOCK-----\n"), wantField: "openpgp_public_key", wantDesc: "not an OpenPGP"},
		{name: "pgp secret key", address: canary, pgp: secret.Bytes(), wantField: "openpgp_public_key", wantDesc: "secret key"},
		{name: "pgp key of someone else", address: canary, pgp: otherPGP.PublicArmored, wantField: "openpgp_public_key", wantDesc: "no user id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := recipientkeys.NewRecord(tt.address, tt.smime, tt.pgp, now)
			var fe *recipientkeys.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField || !strings.Contains(fe.Description, tt.wantDesc) {
				t.Fatalf("NewRecord() = %v, want %s: ...%s...", err, tt.wantField, tt.wantDesc)
			}
			if strings.Contains(err.Error(), "canary") {
				t.Errorf("error %q quotes the address", err)
			}
		})
	}
}

func TestLoadDir(t *testing.T) {
	c := storetest.Client(t)
	s := recipientkeys.New(c, envelopetest.Sealer(t), pseudonymKey, nil)
	dir := t.TempDir()
	jane, john := "jane@patient.example.org", "john@patient.example.org"
	cert := recipientkeystest.NewSMIME(t, recipientkeystest.Options{}, jane)
	pgpJane := recipientkeystest.NewPGP(t, jane, 0)
	pgpJohn := recipientkeystest.NewPGP(t, john, 0)
	write := func(rel string, b []byte) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("acme/patient-1.pem", cert.CertPEM)
	write("acme/patient-1.asc", pgpJane.PublicArmored)
	write("acme/patient-2.asc", pgpJohn.PublicArmored)
	write("acme/README.txt", []byte("ignored"))

	n, err := recipientkeys.LoadDir(t.Context(), dir, s, time.Now())
	if err != nil || n != 2 {
		t.Fatalf("LoadDir() = %d, %v; want 2 records", n, err)
	}
	r, err := s.Get(t.Context(), "acme", jane)
	if err != nil || !bytes.Equal(r.SMIME, cert.Cert.Raw) || len(r.PGP) == 0 {
		t.Fatalf("jane's record = %+v, %v; want certificate and OpenPGP key", r, err)
	}
	if k, err := s.Key(t.Context(), "acme", john); err != nil || k == nil || k.Kind != app.KeyPGP {
		t.Fatalf("john's key = %+v, %v", k, err)
	}

	// A broken file is named (never an address) and nothing more is put.
	write("beta/patient-9.pem", []byte("not a certificate"))
	write("beta/patient-8.asc", recipientkeystest.NewPGP(t, "beta@patient.example.org", 0).PublicArmored)
	_, err = recipientkeys.LoadDir(t.Context(), dir, s, time.Now())
	if err == nil || !strings.Contains(err.Error(), filepath.Join("beta", "patient-9.pem")) {
		t.Fatalf("LoadDir() = %v, want an error naming beta/patient-9.pem", err)
	}
	if _, err := s.Get(t.Context(), "beta", "beta@patient.example.org"); !errors.Is(err, app.ErrNoKeyRecord) {
		t.Errorf("a record of the failed load was put: %v", err)
	}
}
