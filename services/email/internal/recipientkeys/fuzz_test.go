package recipientkeys_test

import (
	"strings"
	"testing"
	"time"

	"github.com/carenotify/carenotify/services/email/internal/recipientkeys"
	"github.com/carenotify/carenotify/services/email/internal/recipientkeys/recipientkeystest"
)

// FuzzNewRecord feeds the admin API's input (address, PEM certificate,
// armored OpenPGP key) to NewRecord: it must not panic, an accepted record
// must hold keys that name the address, and errors never quote the
// address.
func FuzzNewRecord(f *testing.F) {
	addr := "fuzz.patient@example.org"
	cert := recipientkeystest.NewSMIME(f, recipientkeystest.Options{}, addr)
	pgp := recipientkeystest.NewPGP(f, addr, 0)
	f.Add(addr, cert.CertPEM, pgp.PublicArmored)
	f.Add(addr, cert.Cert.Raw, []byte(nil))
	f.Add(addr, []byte(nil), pgp.SecretArmored)
	f.Add("x@y", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n=AAAA\n-----END PGP PUBLIC KEY BLOCK-----\n"))
	now := time.Now().Add(time.Second)
	f.Fuzz(func(t *testing.T, address string, smime, pgpKey []byte) {
		rec, err := recipientkeys.NewRecord(address, smime, pgpKey, now)
		if err != nil {
			if len(address) >= 12 && strings.Contains(address, "@") && strings.Contains(err.Error(), address) {
				t.Fatalf("error %q quotes the address", err)
			}
			return
		}
		if len(rec.SMIME) == 0 && len(rec.PGP) == 0 {
			t.Fatal("accepted a record without keys")
		}
		if len(rec.SMIME) > 0 {
			if _, _, err := recipientkeys.ParseSMIME(rec.SMIME, now); err != nil {
				t.Fatalf("accepted certificate does not parse again: %v", err)
			}
		}
		if len(rec.PGP) > 0 {
			if _, _, err := recipientkeys.ParsePGP(rec.PGP, now); err != nil {
				t.Fatalf("accepted OpenPGP key does not parse again: %v", err)
			}
		}
	})
}
