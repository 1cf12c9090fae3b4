package config_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	pkgconfig "github.com/carenotify/carenotify/pkg/config"
	"github.com/carenotify/carenotify/services/email/internal/config"
)

const (
	from      = "EMAIL_FROM=Carenotify <noreply@carenotify.localhost>"
	keyring   = "EMAIL_KEYRING_DIR=/run/secrets/keys"
	pseudonym = "EMAIL_AUDIT_PSEUDONYM_KEY_FILE=/run/secrets/pseudonym.key"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	brokenKeys := filepath.Join(dir, "keys")
	if err := os.MkdirAll(filepath.Join(brokenKeys, "acme"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(brokenKeys, "acme", "patient-1.pem"), []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	adminFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(adminFile, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		give    []string
		wantErr string
	}{
		{name: "defaults", give: []string{from, keyring, pseudonym}},
		{name: "no from", give: []string{keyring}, wantErr: "EMAIL_FROM is required"},
		{name: "no keyring dir", give: []string{from}, wantErr: "EMAIL_KEYRING_DIR is required"},
		{name: "bad from", give: []string{keyring, "EMAIL_FROM=nobody"}, wantErr: "EMAIL_FROM is not a valid address"},
		{name: "TLS none", give: []string{from, keyring, "EMAIL_SMTP_TLS=none"}, wantErr: "PHI never crosses an unverified connection"},
		{name: "TLS opportunistic", give: []string{from, keyring, "EMAIL_SMTP_TLS=opportunistic"}, wantErr: `EMAIL_SMTP_TLS must be "required"`},
		{name: "bad level", give: []string{from, keyring, "EMAIL_LOG_LEVEL=loud"}, wantErr: "LogLevel"},
		{name: "no grace", give: []string{from, keyring, "EMAIL_SHUTDOWN_GRACE=0s"}, wantErr: "EMAIL_SHUTDOWN_GRACE must be positive"},
		{name: "no workers", give: []string{from, keyring, "EMAIL_WORKERS=0"}, wantErr: "EMAIL_WORKERS must be positive"},
		{name: "bad port", give: []string{from, keyring, "EMAIL_SMTP_PORT=70000"}, wantErr: "EMAIL_SMTP_PORT must be 1-65535"},
		{name: "bad pprof address", give: []string{from, keyring, "EMAIL_PPROF_ADDR=localhost"}, wantErr: "EMAIL_PPROF_ADDR"},
		{name: "bad delivery", give: []string{from, keyring, "EMAIL_DELIVERY=smarthost"}, wantErr: `EMAIL_DELIVERY must be "relay" or "mx"`},
		{name: "bad MX port", give: []string{from, keyring, "EMAIL_MX_PORT=0"}, wantErr: "EMAIL_MX_PORT must be 1-65535"},
		{name: "bad DNS server", give: []string{from, keyring, "EMAIL_DNS_SERVER=127.0.0.1"}, wantErr: "EMAIL_DNS_SERVER"},
		{name: "bad MTA-STS", give: []string{from, keyring, "EMAIL_MTA_STS=testing"}, wantErr: `EMAIL_MTA_STS must be "on" or "off"`},
		{name: "username without password", give: []string{from, keyring, pseudonym, "EMAIL_SMTP_USERNAME=svc"}, wantErr: "go together"},
		{name: "password from file", give: []string{from, keyring, pseudonym, "EMAIL_SMTP_USERNAME=svc", "EMAIL_SMTP_PASSWORD_FILE=" + pwFile}},
		{name: "both passwords", give: []string{from, keyring, pseudonym, "EMAIL_SMTP_USERNAME=svc", "EMAIL_SMTP_PASSWORD=x", "EMAIL_SMTP_PASSWORD_FILE=" + pwFile}, wantErr: "not both"},
		{name: "missing password file", give: []string{from, keyring, "EMAIL_SMTP_PASSWORD_FILE=" + filepath.Join(dir, "nope")}, wantErr: "nope"},
		{name: "CA file without PEM", give: []string{from, keyring, "EMAIL_SMTP_CA_FILE=" + notPEM}, wantErr: "holds no PEM certificate"},
		{name: "recipient keys dir", give: []string{from, keyring, "EMAIL_RECIPIENT_KEYS_DIR=" + dir, "EMAIL_ADMIN_TOKEN=0123456789abcdef"}},
		{name: "recipient keys dir with a broken key", give: []string{from, keyring, "EMAIL_RECIPIENT_KEYS_DIR=" + brokenKeys}, wantErr: "acme/patient-1.pem: not an X.509 certificate"},
		{name: "recipient keys dir is a file", give: []string{from, keyring, "EMAIL_RECIPIENT_KEYS_DIR=" + pwFile}, wantErr: "EMAIL_RECIPIENT_KEYS_DIR must be a directory"},
		{name: "DSN every outcome, FULL", give: []string{from, keyring, "EMAIL_DSN_NOTIFY=success, failure,DELAY", "EMAIL_DSN_RET=FULL"}},
		{name: "DSN off", give: []string{from, keyring, "EMAIL_DSN_NOTIFY=off"}},
		{name: "DSN NEVER with another", give: []string{from, keyring, "EMAIL_DSN_NOTIFY=NEVER,FAILURE"}, wantErr: "EMAIL_DSN_NOTIFY must be"},
		{name: "DSN unknown value", give: []string{from, keyring, "EMAIL_DSN_NOTIFY=BOUNCE"}, wantErr: "EMAIL_DSN_NOTIFY must be"},
		{name: "DSN bad RET", give: []string{from, keyring, "EMAIL_DSN_RET=BODY"}, wantErr: "EMAIL_DSN_RET must be HDRS or FULL"},
		{name: "bad SendGrid key", give: []string{from, keyring, "EMAIL_SENDGRID_WEBHOOK_KEY=bm90IGEga2V5"}, wantErr: "EMAIL_SENDGRID_WEBHOOK_KEY"},
		{name: "bad suppress mode", give: []string{from, keyring, "EMAIL_SUPPRESS_BOUNCES=all"}, wantErr: "EMAIL_SUPPRESS_BOUNCES must be"},
		{name: "short admin token", give: []string{from, keyring, "EMAIL_ADMIN_TOKEN=short"}, wantErr: "EMAIL_ADMIN_TOKEN must be at least 16"},
		{name: "admin token file", give: []string{from, keyring, pseudonym, "EMAIL_ADMIN_TOKEN_FILE=" + adminFile}},
		{name: "both admin tokens", give: []string{from, keyring, pseudonym, "EMAIL_ADMIN_TOKEN=0123456789abcdef", "EMAIL_ADMIN_TOKEN_FILE=" + adminFile}, wantErr: "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pkgconfig.Load[config.Config](append(tt.give, pseudonym))
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Load() = %v, want error %q", err, tt.wantErr)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := pkgconfig.Load[config.Config]([]string{from, keyring, pseudonym})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{
		"http": cfg.HTTPAddr, "grpc": cfg.GRPCAddr, "redis": cfg.RedisURL, "host": cfg.SMTPHost,
		"port": cfg.SMTPPort, "tls": cfg.SMTPTLS, "workers": cfg.Workers, "expiry": cfg.DefaultExpiry.String(),
		"maxBytes": cfg.MaxBodyBytes, "timeout": cfg.SendTimeout.String(), "replicas": cfg.StreamReplicas,
		"level": cfg.LogLevel, "keyring": cfg.KeyringDir,
	}
	want := map[string]any{
		"http": ":8082", "grpc": ":9102", "redis": "redis://127.0.0.1:6379/0", "host": "localhost",
		"port": 587, "tls": "required", "workers": 4, "expiry": "24h0m0s",
		"maxBytes": 2 << 20, "timeout": "30s", "replicas": 1, "level": slog.LevelInfo,
		"keyring": "/run/secrets/keys",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestPasswordNeverPrints(t *testing.T) {
	cfg, err := pkgconfig.Load[config.Config]([]string{from, keyring, pseudonym, "EMAIL_SMTP_USERNAME=svc", "EMAIL_SMTP_PASSWORD=hunter2"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Password() != "hunter2" {
		t.Errorf("Password() = %q", cfg.Password())
	}
	js, _ := json.Marshal(cfg)
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", cfg, "pw", cfg.SMTPPassword)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), string(js), logged.String()} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("password printed: %s", s)
		}
	}
}

func TestPasswordFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := pkgconfig.Load[config.Config]([]string{from, keyring, pseudonym, "EMAIL_SMTP_USERNAME=svc", "EMAIL_SMTP_PASSWORD_FILE=" + file})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Password(); got != "from-file" {
		t.Errorf("Password() = %q, want the file's content without its newline", got)
	}
}

func TestLoadOptionalFeatures(t *testing.T) {
	dir := t.TempDir()
	tokenKey := filepath.Join(dir, "token.key")
	if err := os.WriteFile(tokenKey, []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shortKey := filepath.Join(dir, "short.key")
	if err := os.WriteFile(shortKey, []byte("c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dkimKey := filepath.Join(dir, "dkim.pem")
	if err := os.WriteFile(dkimKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{from, keyring, pseudonym}
	tests := []struct {
		name    string
		give    []string
		wantErr string
	}{
		{name: "connection reuse", give: []string{"EMAIL_SMTP_MAX_MESSAGES_PER_CONNECTION=1", "EMAIL_SMTP_IDLE_TIMEOUT=5s"}},
		{name: "no messages per connection", give: []string{"EMAIL_SMTP_MAX_MESSAGES_PER_CONNECTION=0"}, wantErr: "EMAIL_SMTP_MAX_MESSAGES_PER_CONNECTION must be positive"},
		{name: "no idle timeout", give: []string{"EMAIL_SMTP_IDLE_TIMEOUT=0s"}, wantErr: "EMAIL_SMTP_IDLE_TIMEOUT must be positive"},
		{name: "dkim", give: []string{"EMAIL_DKIM_KEY_FILE=" + dkimKey, "EMAIL_DKIM_SELECTOR=s1"}},
		{name: "dkim without selector", give: []string{"EMAIL_DKIM_KEY_FILE=" + dkimKey}, wantErr: "EMAIL_DKIM_SELECTOR is required"},
		{name: "dkim selector without key", give: []string{"EMAIL_DKIM_SELECTOR=s1"}, wantErr: "need EMAIL_DKIM_KEY_FILE"},
		{name: "dkim key not a key", give: []string{"EMAIL_DKIM_KEY_FILE=" + tokenKey, "EMAIL_DKIM_SELECTOR=s1"}, wantErr: "no PEM block"},
		{name: "unsubscribe", give: []string{"EMAIL_UNSUBSCRIBE_BASE_URL=https://notify.example.org/email", "EMAIL_UNSUBSCRIBE_KEY_FILE=" + tokenKey}},
		{name: "unsubscribe without key", give: []string{"EMAIL_UNSUBSCRIBE_BASE_URL=https://notify.example.org"}, wantErr: "EMAIL_UNSUBSCRIBE_KEY_FILE is required"},
		{name: "unsubscribe relative URL", give: []string{"EMAIL_UNSUBSCRIBE_BASE_URL=/u", "EMAIL_UNSUBSCRIBE_KEY_FILE=" + tokenKey}, wantErr: "absolute http(s) URL"},
		{name: "unsubscribe short key", give: []string{"EMAIL_UNSUBSCRIBE_BASE_URL=https://n.example.org", "EMAIL_UNSUBSCRIBE_KEY_FILE=" + shortKey}, wantErr: "at least 32 bytes"},
		{name: "bounces", give: []string{"EMAIL_BOUNCE_DOMAIN=bounces.example.org", "EMAIL_BOUNCE_KEY_FILE=" + tokenKey, "EMAIL_BOUNCE_SMTP_ADDR=:2526"}},
		{name: "bounces without key", give: []string{"EMAIL_BOUNCE_DOMAIN=bounces.example.org"}, wantErr: "EMAIL_BOUNCE_KEY_FILE is required"},
		{name: "bounce listener without domain", give: []string{"EMAIL_BOUNCE_SMTP_ADDR=:2526"}, wantErr: "EMAIL_BOUNCE_SMTP_ADDR needs EMAIL_BOUNCE_DOMAIN"},
		{name: "bounce domain an address", give: []string{"EMAIL_BOUNCE_DOMAIN=a@example.org", "EMAIL_BOUNCE_KEY_FILE=" + tokenKey}, wantErr: "must be a domain name"},
		{name: "bounce TLS cert without key", give: []string{"EMAIL_BOUNCE_DOMAIN=b.example.org", "EMAIL_BOUNCE_KEY_FILE=" + tokenKey, "EMAIL_BOUNCE_TLS_CERT_FILE=/x"}, wantErr: "go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pkgconfig.Load[config.Config](append(slices.Clone(base), tt.give...))
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Load() = %v, want error %q", err, tt.wantErr)
			}
		})
	}
}
