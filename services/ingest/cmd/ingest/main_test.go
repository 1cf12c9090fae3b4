package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/carenotify/carenotify/pkg/audit/audittest"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
)

// demoHash is the stored hash of "demo-token".
var demoHash = config.HashToken("demo-token")

// hmacSources is a sources file with an HMAC source whose secret is in LAB_SECRET.
const hmacSources = "sources:\n  - {id: lab, tenant: north, auth: hmac, hmac: {secret_env: LAB_SECRET}}\n"

func TestRunCheckConfig(t *testing.T) {
	keys, _ := envelopetest.Keyring(t)
	pk, _ := audittest.Keys(t)
	pseudonym := "INGEST_AUDIT_PSEUDONYM_KEY_FILE=" + pk
	tests := []struct {
		name    string
		give    []string
		want    string
		wantErr string
	}{
		{name: "valid", give: []string{"INGEST_SOURCES=demo=demo:" + demoHash, "INGEST_KEYRING_DIR=" + keys, pseudonym}, want: "config ok\n"},
		{name: "plain token warns", give: []string{"INGEST_SOURCES=demo=demo:demo-token", "INGEST_KEYRING_DIR=" + keys, pseudonym},
			want: "warning: INGEST_SOURCES: source \"demo\" has a plain bearer token in the configuration; store only its hash (name=tenant:sha256:<hex>, printed by `ingest -hash-token`)\nconfig ok\n"},
		{name: "sources file", give: []string{"INGEST_SOURCES_FILE=" + sourcesFile(t, "sources:\n  - id: demo\n    tenant: demo\n    token_hash: "+demoHash+"\n"),
			"INGEST_KEYRING_DIR=" + keys, pseudonym}, want: "config ok\n"},
		{name: "hmac secret", give: []string{"INGEST_SOURCES_FILE=" + sourcesFile(t, hmacSources), "LAB_SECRET=5f0c8d2e4b6a1f3e9d7c5b3a1e0f2d4c",
			"INGEST_KEYRING_DIR=" + keys, pseudonym}, want: "config ok\n"},
		{name: "hmac secret missing", give: []string{"INGEST_SOURCES_FILE=" + sourcesFile(t, hmacSources), "INGEST_KEYRING_DIR=" + keys, pseudonym},
			wantErr: `source "lab": hmac.secret_env LAB_SECRET: the variable is not set`},
		{name: "sources file error", give: []string{"INGEST_SOURCES_FILE=" + sourcesFile(t, "sources:\n  - id: demo\n    tenant: demo\n    token: demo-token\n"),
			"INGEST_KEYRING_DIR=" + keys, pseudonym}, wantErr: `source 1 ("demo"): token: plain tokens are not accepted`},
		{name: "no keyring", give: []string{"INGEST_SOURCES=demo=demo:demo-token", pseudonym}, wantErr: "INGEST_KEYRING_DIR is required"},
		{name: "broken keyring", give: []string{"INGEST_SOURCES=demo=demo:demo-token", "INGEST_KEYRING_DIR=" + t.TempDir(), pseudonym}, wantErr: "keyring"},
		{name: "no sources", give: []string{"INGEST_SOURCES="}, wantErr: "INGEST_SOURCES"},
		{name: "no variables", give: nil, wantErr: "INGEST_SOURCES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(t.Context(), []string{"-check-config"}, tt.give, nil, &out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("run() error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || out.String() != tt.want {
				t.Errorf("run() = %q, %v; want %q", out.String(), err, tt.want)
			}
			if strings.Contains(out.String(), "demo-token") || (err != nil && strings.Contains(err.Error(), "demo-token")) {
				t.Error("output repeats the token")
			}
		})
	}
}

func sourcesFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sources.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunHashToken(t *testing.T) {
	const token = "Zq3v7kY2pW9sT1xR4mN8bC6dF0"
	tests := []struct {
		name, stdin, want, wantErr string
	}{
		{name: "line", stdin: token + "\n", want: config.HashToken(token) + "\n"},
		{name: "no newline", stdin: token, want: config.HashToken(token) + "\n"},
		{name: "crlf", stdin: token + "\r\n", want: config.HashToken(token) + "\n"},
		{name: "empty", stdin: "", wantErr: "no token on stdin"},
		{name: "short", stdin: "demo-token\n", wantErr: "shorter than 24 characters"},
		{name: "spaces", stdin: " " + token + "\n", wantErr: "white space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(t.Context(), []string{"-hash-token"}, nil, strings.NewReader(tt.stdin), &out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("run() error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || out.String() != tt.want {
				t.Fatalf("run() = %q, %v; want %q", out.String(), err, tt.want)
			}
		})
	}
	// Known answer, from `printf %s <token> | sha256sum`.
	if got, want := config.HashToken(token), "sha256:ef640faf5adc74e548e7bfbfbaa5c344c2150fa82facb631176114bb1fcb01b2"; got != want {
		t.Errorf("HashToken() = %q, want %q", got, want)
	}
}
