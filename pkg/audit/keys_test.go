package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGenerateAndLoadKeys(t *testing.T) {
	dir := t.TempDir()
	pk, sk, vk := filepath.Join(dir, "pseudonym.key"), filepath.Join(dir, "audit-signing.key"), filepath.Join(dir, "audit-verify.pem")
	if err := GeneratePseudonymKey(pk); err != nil {
		t.Fatal(err)
	}
	pub, err := GenerateSigningKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteVerifyKey(vk, pub); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{pk, sk, vk} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	key, err := LoadPseudonymKey(pk)
	if err != nil || len(key) != PseudonymKeySize {
		t.Errorf("LoadPseudonymKey() = %d bytes, %v", len(key), err)
	}
	priv, err := LoadSigningKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{sk, vk} {
		got, err := LoadVerifyKey(p)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(pub) || !got.Equal(priv.Public()) {
			t.Errorf("LoadVerifyKey(%s) is not the signing key's public key", filepath.Base(p))
		}
	}
	if err := GeneratePseudonymKey(pk); err == nil {
		t.Error("GeneratePseudonymKey() overwrote an existing key")
	}
	if _, err := GenerateSigningKey(sk); err == nil {
		t.Error("GenerateSigningKey() overwrote an existing key")
	}
}

func TestLoadSigningKeyFormats(t *testing.T) {
	seed := bytes.Repeat([]byte{0x33}, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	bad := append(append([]byte(nil), priv...), 0)[:ed25519.PrivateKeySize]
	bad[ed25519.PrivateKeySize-1] ^= 1
	secret := base64.StdEncoding.EncodeToString(seed)
	tests := []struct {
		name    string
		give    string
		wantErr bool
	}{
		{name: "PEM PKCS #8", give: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))},
		{name: "base64 seed", give: secret + "\n"},
		{name: "base64 64-byte key", give: base64.StdEncoding.EncodeToString(priv)},
		{name: "64-byte key with a wrong public half", give: base64.StdEncoding.EncodeToString(bad), wantErr: true},
		{name: "public key", give: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})), wantErr: true},
		{name: "short seed", give: base64.StdEncoding.EncodeToString(seed[:31]), wantErr: true},
		{name: "not base64", give: secret + "!", wantErr: true},
		{name: "PEM garbage", give: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte(secret)})), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(p, []byte(tt.give), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := LoadSigningKey(p)
			if (err != nil) != tt.wantErr {
				t.Fatalf("LoadSigningKey() error = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), secret[:8]) {
					t.Errorf("error %q shows key material", err)
				}
				return
			}
			if diff := cmp.Diff(priv, got); diff != "" {
				t.Errorf("key (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadPseudonymKeyRejects(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{name: "16 bytes", give: base64.StdEncoding.EncodeToString(make([]byte, 16))},
		{name: "raw bytes", give: strings.Repeat("k", 32)},
		{name: "empty", give: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "pseudonym.key")
			if err := os.WriteFile(p, []byte(tt.give), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadPseudonymKey(p)
			if err == nil {
				t.Fatal("LoadPseudonymKey() = nil error")
			}
			if tt.give != "" && strings.Contains(err.Error(), tt.give) {
				t.Errorf("error %q shows the key", err)
			}
		})
	}
}
