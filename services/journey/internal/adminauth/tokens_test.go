package adminauth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadAndAuthenticate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	content := "# care-ops\n" + HashLine("alice", []Role{RoleViewer, RoleEditor}, "tok-alice-0123456789abcdef0123456789") + "\n\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	env := HashLine("bob", []Role{RoleConsentAdmin}, "tok-bob-0123456789abcdef0123456789ab") + ";" +
		HashLine("ops.bot", []Role{RoleViewer, RoleViewer}, "tok-bot-0123456789abcdef0123456789ab")
	toks, err := Load(file, env)
	if err != nil {
		t.Fatal(err)
	}
	if toks.Len() != 3 {
		t.Errorf("Len() = %d, want 3", toks.Len())
	}
	tests := []struct {
		token string
		want  Principal
		err   bool
	}{
		{token: "tok-alice-0123456789abcdef0123456789", want: Principal{ID: "alice", Roles: []Role{RoleViewer, RoleEditor}}},
		{token: "tok-bob-0123456789abcdef0123456789ab", want: Principal{ID: "bob", Roles: []Role{RoleConsentAdmin}}},
		{token: "tok-bot-0123456789abcdef0123456789ab", want: Principal{ID: "ops.bot", Roles: []Role{RoleViewer}}},
		{token: "tok-alice-0123456789abcdef012345678", err: true},
		{token: "", err: true},
	}
	for _, tt := range tests {
		got, err := toks.Authenticate(tt.token)
		if (err != nil) != tt.err {
			t.Errorf("Authenticate(%q) error = %v", tt.token, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Authenticate(%q) (-want +got):\n%s", tt.token, diff)
		}
	}
	if p, _ := toks.Authenticate("tok-alice-0123456789abcdef0123456789"); !p.Has(RoleEditor) || p.Has(RoleConsentAdmin) {
		t.Errorf("Has() wrong for %v", p)
	}
	var none *Tokens
	if _, err := none.Authenticate("x"); err == nil {
		t.Error("nil Tokens authenticated a token")
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	good := HashLine("alice", []Role{RoleViewer}, "tok-secret-canary-0123456789abcdef")
	content := strings.Join([]string{
		good,
		"bob viewer", // 2: two fields
		"jane@example.org viewer sha256:" + strings.Repeat("a", 64), // 3: bad principal
		"carol admin sha256:" + strings.Repeat("b", 64),             // 4: bad role
		"dave viewer tok-secret-canary-0123456789abcdef",            // 5: token instead of hash
		strings.Replace(good, "alice", "erin", 1),                   // 6: duplicate
	}, "\n")
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(file, "x y")
	if err == nil {
		t.Fatal("Load() accepted bad lines")
	}
	for _, want := range []string{
		file + ":2: want three fields",
		file + ":3: principal:",
		file + `:4: role "admin" is not one of viewer, editor, consent-admin`,
		file + ":5: token hash: want sha256:",
		file + ":6: the same token is configured for alice already",
		"JOURNEY_ADMIN_TOKENS:1: want three fields",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "tok-secret-canary") || strings.Contains(err.Error(), "jane@") {
		t.Errorf("error repeats a secret or an address:\n%v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing"), ""); err == nil || !strings.Contains(err.Error(), "JOURNEY_ADMIN_TOKENS_FILE") {
		t.Errorf("Load(missing) = %v", err)
	}
}
