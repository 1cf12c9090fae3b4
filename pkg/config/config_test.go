package config_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/config"
)

type testConfig struct {
	Addr    string   `env:"TEST_ADDR" envDefault:":8080"`
	Tokens  []string `env:"TEST_TOKENS" envSeparator:","`
	Retries int      `env:"TEST_RETRIES" envDefault:"3"`
}

func (c *testConfig) Validate() error {
	if c.Retries < 0 {
		return errors.New("TEST_RETRIES must be >= 0")
	}
	return nil
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		give    []string
		want    *testConfig
		wantErr string
	}{
		{name: "defaults", give: nil, want: &testConfig{Addr: ":8080", Retries: 3}},
		{name: "set", give: []string{"TEST_ADDR=:9", "TEST_TOKENS=a,b", "TEST_RETRIES=0", "OTHER=x"}, want: &testConfig{Addr: ":9", Tokens: []string{"a", "b"}}},
		{name: "not a number", give: []string{"TEST_RETRIES=many"}, wantErr: `field "Retries"`},
		{name: "invalid", give: []string{"TEST_RETRIES=-1"}, wantErr: "TEST_RETRIES must be >= 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Load[testConfig](tt.give)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load() error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Load() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	f, err := config.ParseFlags("svc", []string{"-check-config"}, io.Discard)
	if err != nil || !f.CheckConfig {
		t.Fatalf("ParseFlags() = %+v, %v; want CheckConfig", f, err)
	}
	if _, err := config.ParseFlags("svc", []string{"extra"}, io.Discard); err == nil {
		t.Fatal("ParseFlags(extra) succeeded, want error")
	}
}
