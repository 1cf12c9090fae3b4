package telemetry_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/carenotify/carenotify/pkg/telemetry"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestEndpoints(t *testing.T) {
	tel := telemetry.New("testsvc")
	h := tel.Handler()

	if code, body := get(t, h, "/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, h, "/metrics"); code != 200 || !strings.Contains(body, `carenotify_service_up{service="testsvc"} 1`) {
		t.Errorf("/metrics = %d, missing service_up:\n%s", code, body)
	}
	if code, _ := get(t, h, "/readyz"); code != 200 {
		t.Errorf("/readyz with no checks = %d, want 200", code)
	}

	tel.AddReadiness("nats", func(context.Context) error { return nil })
	tel.AddReadiness("redis", func(context.Context) error { return errors.New("connection refused") })
	code, body := get(t, h, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"redis":"connection refused"`) || strings.Contains(body, `"nats"`) {
		t.Errorf("/readyz = %d %s; want 503 naming only redis", code, body)
	}
}
