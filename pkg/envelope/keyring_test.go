package envelope_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/envelope"
)

// Synthetic key material. Tests check that no error or formatted value ever
// holds it.
var (
	testKey1 = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	testKey2 = base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	shortKey = base64.StdEncoding.EncodeToString([]byte("only-31-bytes-of-key-material!!"))
)

type file struct {
	data string
	mode os.FileMode
}

func writeFiles(t *testing.T, files map[string]file) string {
	t.Helper()
	dir := t.TempDir()
	for name, f := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, f.mode); err != nil { // not subject to umask
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadKeyring(t *testing.T) {
	tests := []struct {
		name        string
		give        map[string]file
		want        []string // kids, primary first
		wantErr     string
		wantWarning string
	}{
		{
			name: "one key",
			give: map[string]file{"k1.key": {testKey1 + "\n", 0o600}, "primary": {"k1\n", 0o600}},
			want: []string{"k1", "k1"},
		},
		{
			name: "two keys, no newlines, other files ignored",
			give: map[string]file{
				"k1.key": {testKey1, 0o400}, "k-2.key": {testKey2 + "\r\n", 0o600}, "primary": {"k-2", 0o644},
				"README": {"not a key", 0o644}, ".k3.key.tmp-1": {"junk", 0o600}, "..data": {"x", 0o600},
			},
			want: []string{"k-2", "k-2", "k1"},
		},
		{
			name:        "group readable key warns",
			give:        map[string]file{"k1.key": {testKey1, 0o644}, "primary": {"k1", 0o644}},
			want:        []string{"k1", "k1"},
			wantWarning: "k1.key is readable by group or others (mode 0644)",
		},
		{
			name:    "world writable key",
			give:    map[string]file{"k1.key": {testKey1, 0o666}, "primary": {"k1", 0o644}},
			wantErr: "key file k1.key: writable by anyone",
		},
		{
			name:    "world writable primary",
			give:    map[string]file{"k1.key": {testKey1, 0o600}, "primary": {"k1", 0o666}},
			wantErr: "primary file: writable by anyone",
		},
		{
			name:    "missing primary",
			give:    map[string]file{"k1.key": {testKey1, 0o600}},
			wantErr: "missing primary file",
		},
		{
			name:    "empty dir",
			give:    map[string]file{},
			wantErr: "missing primary file",
		},
		{
			name:    "primary without key file",
			give:    map[string]file{"k1.key": {testKey1, 0o600}, "primary": {"k2", 0o600}},
			wantErr: `primary "k2" has no key file k2.key`,
		},
		{
			name:    "primary not a kid",
			give:    map[string]file{"k1.key": {testKey1, 0o600}, "primary": {"K1 and more", 0o600}},
			wantErr: "primary file: not a key id",
		},
		{
			name:    "short key",
			give:    map[string]file{"k1.key": {shortKey, 0o600}, "primary": {"k1", 0o600}},
			wantErr: "key file k1.key: want 32 bytes in standard base64 on one line",
		},
		{
			name:    "not base64",
			give:    map[string]file{"k1.key": {"secret-key-material-not-base64!!", 0o600}, "primary": {"k1", 0o600}},
			wantErr: "key file k1.key: want 32 bytes in standard base64 on one line",
		},
		{
			name:    "raw key bytes instead of base64",
			give:    map[string]file{"k1.key": {"0123456789abcdef0123456789abcdef", 0o600}, "primary": {"k1", 0o600}},
			wantErr: "key file k1.key: want 32 bytes",
		},
		{
			name:    "invalid kid",
			give:    map[string]file{"K_1.key": {testKey1, 0o600}, "primary": {"k1", 0o600}},
			wantErr: `key file "K_1.key": invalid key id`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.give)
			kr, err := envelope.LoadKeyring(dir)
			var got []string
			var warnings string
			if err == nil {
				got = append([]string{kr.Primary()}, kr.IDs()...)
				warnings = strings.Join(kr.Warnings(), "\n")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("LoadKeyring() kids (-want +got):\n%s", diff)
			}
			if (err != nil) != (tt.wantErr != "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("LoadKeyring() error = %v, want %q", err, tt.wantErr)
			}
			if !strings.Contains(warnings, tt.wantWarning) || (warnings == "") != (tt.wantWarning == "") {
				t.Errorf("Warnings() = %q, want %q", warnings, tt.wantWarning)
			}
			assertNoKeyMaterial(t, fmt.Sprint(err), tt.give)
		})
	}
}

func TestLoadKeyringMissingDir(t *testing.T) {
	_, err := envelope.LoadKeyring(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadKeyring(missing dir) = %v, want fs.ErrNotExist", err)
	}
}

// TestKeyringFormatsWithoutKeys checks that printing or logging a keyring or
// a sealer shows key ids only.
func TestKeyringFormatsWithoutKeys(t *testing.T) {
	give := map[string]file{"k1.key": {testKey1, 0o600}, "k2.key": {testKey2, 0o600}, "primary": {"k2", 0o600}}
	kr, err := envelope.LoadKeyring(writeFiles(t, give))
	if err != nil {
		t.Fatal(err)
	}
	s := envelope.NewSealer(kr, nil)
	var log strings.Builder
	slog.New(slog.NewJSONHandler(&log, nil)).Info("loaded", "keyring", kr, "sealer", s)
	got := []string{
		fmt.Sprint(kr), fmt.Sprintf("%v %+v %#v %s", kr, kr, kr, kr), fmt.Sprintf("%v %+v %#v", s, s, s),
		log.String(),
	}
	for _, g := range got {
		assertNoKeyMaterial(t, g, give)
		if !strings.Contains(g, "k2") {
			t.Errorf("formatted keyring %q does not name the primary", g)
		}
	}
}

func TestKeyFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	kid1, err := envelope.GenerateKEK(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^k-\d{8}-[a-z2-7]{6}$`).MatchString(kid1) || !envelope.ValidKID(kid1) {
		t.Errorf("GenerateKEK() kid = %q, want k-YYYYMMDD-xxxxxx", kid1)
	}
	fi, err := os.Stat(filepath.Join(dir, kid1+".key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", fi.Mode().Perm())
	}
	if _, err := envelope.LoadKeyring(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadKeyring() without primary = %v, want fs.ErrNotExist", err)
	}
	if err := envelope.SetPrimary(dir, kid1); err != nil {
		t.Fatal(err)
	}
	kid2, err := envelope.GenerateKEK(dir)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := envelope.LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	if kr.Primary() != kid1 || !kr.Has(kid2) || len(kr.Warnings()) != 0 {
		t.Errorf("keyring = %v, warnings %q; want primary %s and %s, no warnings", kr, kr.Warnings(), kid1, kid2)
	}

	tests := []struct {
		name string
		give func() error
		want string
	}{
		{name: "set unknown primary", give: func() error { return envelope.SetPrimary(dir, "k-none") }, want: "k-none.key"},
		{name: "set invalid primary", give: func() error { return envelope.SetPrimary(dir, "../x") }, want: "invalid key id"},
		{name: "retire primary", give: func() error { return envelope.RetireKEK(dir, kid1) }, want: "it is the primary KEK"},
		{name: "retire unknown", give: func() error { return envelope.RetireKEK(dir, "k-none") }, want: "no key file k-none.key"},
		{name: "retire invalid", give: func() error { return envelope.RetireKEK(dir, "../primary") }, want: "invalid key id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.give(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}

	if err := envelope.SetPrimary(dir, kid2); err != nil {
		t.Fatal(err)
	}
	if err := envelope.RetireKEK(dir, kid1); err != nil {
		t.Fatal(err)
	}
	kr, err = envelope.LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{kid2}, kr.IDs()); diff != "" || kr.Primary() != kid2 {
		t.Errorf("after retire, keyring = %v (-want +got):\n%s", kr, diff)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{kid2 + ".key", "primary"}, names); diff != "" {
		t.Errorf("files left in dir (-want +got):\n%s", diff)
	}
}

// assertNoKeyMaterial fails if s holds the content of a key file in files,
// or a known test key.
func assertNoKeyMaterial(t *testing.T, s string, files map[string]file) {
	t.Helper()
	secrets := []string{testKey1, testKey2, shortKey, "0123456789abcdef", "secret-key-material"}
	for name, f := range files {
		if strings.HasSuffix(name, ".key") {
			secrets = append(secrets, strings.TrimSpace(f.data))
		}
	}
	for _, secret := range secrets {
		if secret != "" && strings.Contains(s, secret) {
			t.Errorf("%q holds key material", s)
		}
	}
}
