package config_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	pkgconfig "github.com/carenotify/carenotify/pkg/config"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
)

func TestLoad(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "sources")
	if err := os.WriteFile(secret, []byte("epic-prod=general:s3cret:with=colons\nlab=general:tok2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		give    []string
		want    config.Sources
		wantErr string
	}{
		{name: "demo", give: []string{"INGEST_SOURCES=demo=demo:demo-token"},
			want: config.Sources{{Name: "demo", Tenant: "demo", Auth: "bearer", Token: "demo-token"}}},
		{name: "several", give: []string{"INGEST_SOURCES=demo=demo:demo-token, epic-prod=general:x=y:z"},
			want: config.Sources{{Name: "demo", Tenant: "demo", Auth: "bearer", Token: "demo-token"}, {Name: "epic-prod", Tenant: "general", Auth: "bearer", Token: "x=y:z"}}},
		{name: "file", give: []string{"INGEST_SOURCES_FILE=" + secret},
			want: config.Sources{{Name: "epic-prod", Tenant: "general", Auth: "bearer", Token: "s3cret:with=colons"}, {Name: "lab", Tenant: "general", Auth: "bearer", Token: "tok2"}}},
		{name: "none", give: nil, wantErr: "INGEST_SOURCES or INGEST_SOURCES_FILE must name at least one source"},
		{name: "empty", give: []string{"INGEST_SOURCES="}, wantErr: "must name at least one source"},
		{name: "both", give: []string{"INGEST_SOURCES=demo=demo:t", "INGEST_SOURCES_FILE=" + secret}, wantErr: "not both"},
		{name: "missing file", give: []string{"INGEST_SOURCES_FILE=/nonexistent/sources"}, wantErr: "INGEST_SOURCES_FILE"},
		{name: "no tenant", give: []string{"INGEST_SOURCES=demo=secret-token"}, wantErr: "source entry 1: want name=tenant:token"},
		{name: "bad name", give: []string{"INGEST_SOURCES=de.mo=demo:secret-token"}, wantErr: "source entry 1: name must be"},
		{name: "wildcard tenant", give: []string{"INGEST_SOURCES=demo=*:secret-token"}, wantErr: "source entry 1: tenant must be"},
		{name: "empty token", give: []string{"INGEST_SOURCES=demo=demo:"}, wantErr: "source entry 1: token is empty"},
		{name: "repeated", give: []string{"INGEST_SOURCES=demo=demo:a,demo=other:secret-token"}, wantErr: "source entry 2: source name repeats"},
		{name: "bad level", give: []string{"INGEST_SOURCES=demo=demo:t", "INGEST_LOG_LEVEL=loud"}, wantErr: "LogLevel"},
		{name: "no grace", give: []string{"INGEST_SOURCES=demo=demo:t", "INGEST_SHUTDOWN_GRACE=0s"}, wantErr: "INGEST_SHUTDOWN_GRACE must be positive"},
		{name: "no replicas", give: []string{"INGEST_SOURCES=demo=demo:t", "INGEST_STREAM_REPLICAS=0"}, wantErr: "INGEST_STREAM_REPLICAS"},
		{name: "no body", give: []string{"INGEST_SOURCES=demo=demo:t", "INGEST_MAX_BODY_BYTES=0"}, wantErr: "INGEST_MAX_BODY_BYTES must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pkgconfig.Load[config.Config](append(tt.give, "INGEST_KEYRING_DIR=/run/secrets/keys", "INGEST_AUDIT_PSEUDONYM_KEY_FILE=/run/secrets/pseudonym.key"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load() error = %v, want containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret-token") || strings.Contains(err.Error(), "s3cret") {
					t.Errorf("Load() error %q repeats a token", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got.AllSources()); diff != "" {
				t.Errorf("AllSources() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	got, err := pkgconfig.Load[config.Config]([]string{"INGEST_SOURCES=demo=demo:demo-token", "INGEST_KEYRING_DIR=/keys", "INGEST_AUDIT_PSEUDONYM_KEY_FILE=/p.key"})
	if err != nil {
		t.Fatal(err)
	}
	got.Sources, got.Warnings = nil, nil
	want := &config.Config{
		KeyringDir: "/keys", AuditPseudonymKeyFile: "/p.key",
		HTTPAddr: ":8080", NATSURL: "nats://127.0.0.1:4222", RedisURL: "redis://127.0.0.1:6379/0", LogLevel: slog.LevelInfo,
		ShutdownGrace: 10e9, StreamReplicas: 1, MaxBodyBytes: 10 << 20, PublishTimeout: 5e9, HeartbeatCheckInterval: 60e9,
		MLLPAddr: ":2575", MLLPReadTimeout: 60e9, MLLPMaxFrameBytes: 4 << 20, MLLPMaxConns: 64, MLLPTimeZone: "UTC",
		MLLPAckTTL: 168 * time.Hour, MLLPAckLockTTL: 30e9, MLLPAckLockWait: 10e9,
		StateConfig: config.StateConfig{StateTTL: 400 * 24 * time.Hour, StateLockTTL: 15e9, StateLockWait: 5e9},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults mismatch (-want +got):\n%s", diff)
	}
}

func TestStateConfig(t *testing.T) {
	base := []string{"INGEST_SOURCES=demo=demo:demo-token", "INGEST_KEYRING_DIR=/keys", "INGEST_AUDIT_PSEUDONYM_KEY_FILE=/p.key"}
	tests := []struct {
		name    string
		give    []string
		want    config.IdentifierSystems
		wantErr string
	}{
		{name: "systems", give: []string{"INGEST_MLLP_IDENTIFIER_SYSTEMS=GHH=https://ghh.example.org/appt, @placer=urn:oid:1.2.3"},
			want: config.IdentifierSystems{"GHH": "https://ghh.example.org/appt", "@placer": "urn:oid:1.2.3"}},
		{name: "no system", give: []string{"INGEST_MLLP_IDENTIFIER_SYSTEMS=GHH="}, wantErr: "entry 1: want namespace=system"},
		{name: "unknown role", give: []string{"INGEST_MLLP_IDENTIFIER_SYSTEMS=@order=x"}, wantErr: "roles are"},
		{name: "twice", give: []string{"INGEST_MLLP_IDENTIFIER_SYSTEMS=A=x,A=y"}, wantErr: "entry 2: namespace given twice"},
		{name: "short ttl", give: []string{"INGEST_STATE_TTL=1h"}, wantErr: "INGEST_STATE_TTL must be at least 24h"},
		{name: "lock below publish timeout", give: []string{"INGEST_STATE_LOCK_TTL=2s"}, wantErr: "longer than INGEST_PUBLISH_TIMEOUT"},
		{name: "short ack ttl", give: []string{"INGEST_MLLP_ACK_TTL=30s"}, wantErr: "INGEST_MLLP_ACK_TTL must be at least 1m"},
		{name: "ack lock below processing", give: []string{"INGEST_MLLP_ACK_LOCK_TTL=8s"}, wantErr: "INGEST_MLLP_ACK_LOCK_TTL must be longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := pkgconfig.Load[config.Config](append(base, tt.give...))
			if err == nil {
				err = cfg.Validate()
			}
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			default:
				if diff := cmp.Diff(tt.want, cfg.MLLPIdentifierSystems); diff != "" {
					t.Errorf("systems (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestTokenNeverPrints(t *testing.T) {
	cfg, err := pkgconfig.Load[config.Config]([]string{"INGEST_SOURCES=demo=demo:demo-token", "INGEST_KEYRING_DIR=/keys", "INGEST_AUDIT_PSEUDONYM_KEY_FILE=/p.key"})
	if err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(cfg)
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", cfg, "token", cfg.Sources[0].Token)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", *cfg), fmt.Sprintf("%#v", cfg.Sources), string(j), logged.String()} {
		if strings.Contains(s, "demo-token") {
			t.Errorf("token printed: %s", s)
		}
	}
}
