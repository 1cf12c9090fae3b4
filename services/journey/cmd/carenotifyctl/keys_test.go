package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/bus/bustest"
	"github.com/carenotify/carenotify/pkg/envelope"
)

// ctl runs carenotifyctl with args and returns its stdout and stderr. Every
// output is checked against the key files seen so far: it must never hold
// key bytes.
type ctl struct {
	t       *testing.T
	natsURL string
	dir     string
	secrets map[string]bool
}

func (c *ctl) run(args ...string) (stdout, stderr string, err error) {
	c.t.Helper()
	c.collectSecrets()
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetArgs(append(args, "--nats-url", c.natsURL))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(c.t.Context())
	c.collectSecrets()
	all := out.String() + errOut.String()
	if err != nil {
		all += err.Error()
	}
	for secret := range c.secrets {
		if strings.Contains(all, secret) {
			c.t.Errorf("carenotifyctl %s printed key material", strings.Join(args, " "))
		}
	}
	return out.String(), errOut.String(), err
}

// collectSecrets remembers the content of every key file in the directory.
func (c *ctl) collectSecrets() {
	c.t.Helper()
	files, _ := filepath.Glob(filepath.Join(c.dir, "*.key"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			c.t.Fatal(err)
		}
		c.secrets[strings.TrimSpace(string(b))] = true
	}
}

func (c *ctl) mustRun(args ...string) string {
	c.t.Helper()
	out, _, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("carenotifyctl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (c *ctl) keyring() *envelope.Keyring {
	c.t.Helper()
	kr, err := envelope.LoadKeyring(c.dir)
	if err != nil {
		c.t.Fatal(err)
	}
	return kr
}

func newCtl(t *testing.T, natsURL string) *ctl {
	return &ctl{t: t, natsURL: natsURL, dir: filepath.Join(t.TempDir(), "keys"), secrets: map[string]bool{}}
}

// TestKeysLifecycle walks an operator through rotation: first key, data
// sealed by a service, rotate, refused retires, rewrap, retire, list.
func TestKeysLifecycle(t *testing.T) {
	srv := bustest.Start(t)
	c := newCtl(t, srv.ClientURL())
	ctx := t.Context()

	// First key.
	out := c.mustRun("keys", "rotate", "--dir", c.dir)
	kek1 := c.keyring().Primary()
	if !strings.Contains(out, "new primary KEK: "+kek1) || !strings.Contains(out, "previous primary: none") || !strings.Contains(out, "keys rewrap") {
		t.Errorf("first rotate printed:\n%s", out)
	}

	// A service seals data: data keys wrapped by kek1 in CN_DATA_KEYS.
	_, js := bustest.Connect(t, srv)
	ks, err := envelope.NewKVStore(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	bindings := []envelope.Binding{{Tenant: "north", Kind: "event", ID: "e1"}, {Tenant: "south", Kind: "redis", ID: "cn:{south:p1}:contact"}}
	var sealed [][]byte
	s1 := envelope.NewSealer(c.keyring(), ks)
	for _, b := range bindings {
		v, err := s1.Seal(ctx, []byte("value of "+b.ID), b)
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, v)
	}

	// Rotate.
	out = c.mustRun("keys", "rotate", "--dir", c.dir)
	kek2 := c.keyring().Primary()
	if kek2 == kek1 || !strings.Contains(out, "new primary KEK: "+kek2) || !strings.Contains(out, "previous primary: "+kek1) {
		t.Errorf("second rotate printed:\n%s", out)
	}
	out = c.mustRun("keys", "list", "--dir", c.dir)
	if diff := cmp.Diff(listing(c.keyring()), out); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}

	// Retiring now is refused: kek2 is primary, kek1 still wraps data keys.
	refusals := []struct {
		name string
		give []string
		want string
	}{
		{name: "primary", give: []string{"keys", "retire", "--dir", c.dir, "--kid", kek2}, want: kek2 + " is the primary KEK"},
		{name: "still in use", give: []string{"keys", "retire", "--dir", c.dir, "--kid", kek1}, want: "2 data keys are still wrapped by " + kek1 + ": run `carenotifyctl keys rewrap` first"},
		{name: "unknown kid", give: []string{"keys", "retire", "--dir", c.dir, "--kid", "k-none"}, want: "no KEK k-none"},
		{name: "no kid", give: []string{"keys", "retire", "--dir", c.dir}, want: "--kid is required"},
		{name: "rotate to the primary", give: []string{"keys", "rotate", "--dir", c.dir, "--kid", kek2}, want: "already the primary"},
		{name: "rotate to unknown kid", give: []string{"keys", "rotate", "--dir", c.dir, "--kid", "k-none"}, want: "k-none.key"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := c.run(tt.give...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if kr := c.keyring(); kr.Primary() != kek2 || !kr.Has(kek1) {
		t.Fatalf("keyring changed by refused commands: %v", kr)
	}

	// Rewrap, then retire.
	out = c.mustRun("keys", "rewrap", "--dir", c.dir)
	if want := "data keys: 2, re-wrapped under " + kek2 + ": 2, already under it: 0, failed: 0\n"; out != want {
		t.Errorf("rewrap printed %q, want %q", out, want)
	}
	out = c.mustRun("keys", "retire", "--dir", c.dir, "--kid", kek1)
	if !strings.Contains(out, "retired KEK "+kek1) {
		t.Errorf("retire printed:\n%s", out)
	}
	kr := c.keyring()
	if diff := cmp.Diff([]string{kek2}, kr.IDs()); diff != "" {
		t.Errorf("keyring after retire (-want +got):\n%s", diff)
	}
	out = c.mustRun("keys", "list", "--dir", c.dir)
	if want := kek2 + "\tprimary\n"; out != want {
		t.Errorf("list printed %q, want %q", out, want)
	}

	// A restarted service (fresh keyring, empty cache) reads the old data.
	s2 := envelope.NewSealer(kr, ks)
	for i, b := range bindings {
		got, err := s2.Open(ctx, sealed[i], b)
		if err != nil || string(got) != "value of "+b.ID {
			t.Errorf("Open(%s) after retire = %q, %v", b.ID, got, err)
		}
	}

	// Generate, then promote: the fleet-friendly two-step rotation.
	out = c.mustRun("keys", "generate", "--dir", c.dir)
	kek3 := strings.TrimSpace(out)
	if !envelope.ValidKID(kek3) || c.keyring().Primary() != kek2 || !c.keyring().Has(kek3) {
		t.Fatalf("generate printed %q; keyring %v", out, c.keyring())
	}
	out = c.mustRun("keys", "rotate", "--dir", c.dir, "--kid", kek3)
	if !strings.Contains(out, "new primary KEK: "+kek3) || !strings.Contains(out, "previous primary: "+kek2) {
		t.Errorf("rotate --kid printed:\n%s", out)
	}
	out = c.mustRun("keys", "list", "--dir", c.dir)
	if diff := cmp.Diff(listing(c.keyring()), out); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	if len(c.secrets) != 3 {
		t.Errorf("saw %d distinct key files, want 3", len(c.secrets))
	}
}

// listing is what `keys list` should print for kr.
func listing(kr *envelope.Keyring) string {
	var b strings.Builder
	for _, kid := range kr.IDs() {
		b.WriteString(kid)
		if kid == kr.Primary() {
			b.WriteString("\tprimary")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestKeysWithoutDataKeys: before any service has run there is no
// CN_DATA_KEYS bucket; rewrap has nothing to do and retire is allowed.
func TestKeysWithoutDataKeys(t *testing.T) {
	c := newCtl(t, bustest.Start(t).ClientURL())
	c.mustRun("keys", "rotate", "--dir", c.dir)
	kek1 := c.keyring().Primary()
	c.mustRun("keys", "rotate", "--dir", c.dir)
	if out := c.mustRun("keys", "rewrap", "--dir", c.dir); out != "no data keys yet: nothing to re-wrap\n" {
		t.Errorf("rewrap printed %q", out)
	}
	c.mustRun("keys", "retire", "--dir", c.dir, "--kid", kek1)
	if c.keyring().Has(kek1) {
		t.Error("retire left the key in the keyring")
	}
}

func TestKeysErrors(t *testing.T) {
	c := newCtl(t, "nats://127.0.0.1:1")
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "k1.key"), []byte("c2VjcmV0LWJ1dC1zaG9ydA==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "primary"), []byte("k1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.secrets["c2VjcmV0LWJ1dC1zaG9ydA=="] = true
	loose := t.TempDir()
	if err := os.WriteFile(filepath.Join(loose, "k1.key"), []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(loose, "primary"), []byte("k1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(loose, "k1.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.secrets["MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="] = true

	tests := []struct {
		name       string
		give       []string
		wantErr    string
		wantStderr string
	}{
		{name: "no dir", give: []string{"keys", "list"}, wantErr: "--dir is required"},
		{name: "list empty dir", give: []string{"keys", "list", "--dir", t.TempDir()}, wantErr: "missing primary file"},
		{name: "list broken key", give: []string{"keys", "list", "--dir", broken}, wantErr: "key file k1.key: want 32 bytes"},
		{name: "rotate broken keyring", give: []string{"keys", "rotate", "--dir", broken}, wantErr: "key file k1.key: want 32 bytes"},
		{name: "rewrap broken keyring", give: []string{"keys", "rewrap", "--dir", broken}, wantErr: "key file k1.key"},
		{name: "list warns about mode", give: []string{"keys", "list", "--dir", loose}, wantStderr: "warning: key file k1.key is readable by group or others (mode 0644)"},
		{name: "unexpected argument", give: []string{"keys", "list", "--dir", loose, "extra"}, wantErr: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := c.run(tt.give...)
			if (err != nil) != (tt.wantErr != "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want %q", err, tt.wantErr)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.wantStderr)
			}
		})
	}
	if entries, err := os.ReadDir(broken); err != nil || len(entries) != 2 {
		t.Errorf("rotate changed a broken keyring: %d files, %v", len(entries), err)
	}
}
