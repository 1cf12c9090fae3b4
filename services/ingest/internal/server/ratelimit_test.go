package server_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carenotify/carenotify/services/ingest/internal/config"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify/fhirnotifytest"
	"github.com/carenotify/carenotify/services/ingest/internal/server"
)

// limitedSources: "slow" may send 2 requests an hour, bodies up to 4 KiB.
var limitedSources = append(append(config.Sources{}, sources...),
	config.Source{Name: "slow", Tenant: "north", TokenHash: config.HashToken("slow-token"),
		Limits: config.Limits{Rate: 2, Per: time.Hour, MaxBodyBytes: 4096}})

func TestRateLimit(t *testing.T) {
	e := newEnvWith(t, func(o *server.Options) { o.Sources = limitedSources })
	body := fhirnotifytest.AppointmentNotification(t, fhirnotifytest.BookedOptions)
	hb := []byte(`{"resourceType":"Bundle","type":"history","entry":[]}`)
	slow := func(b []byte) request {
		return request{source: "slow", token: "slow-token", contentType: "application/fhir+json", body: b}
	}
	if len(body) <= 4096 {
		t.Fatalf("test body is %d bytes, want more than the 4096 limit", len(body))
	}
	// The body limit is the source's, not the endpoint's 1 MiB.
	got := e.post(t, slow(body))
	if is := got.outcome.Issue[0]; got.status != 413 || is.Code != "too-costly" || !strings.Contains(is.Diagnostics, "larger than the 4096 bytes this endpoint accepts from this source") {
		t.Fatalf("large body = %d %+v, want 413 too-costly", got.status, got.outcome)
	}
	// The 413 took the first request of the budget; one more passes.
	if got := e.post(t, slow(hb)); got.status == 429 || got.status == 413 {
		t.Fatalf("second request = %d %+v, want it through the limits", got.status, got.outcome)
	}
	got = e.post(t, slow(hb))
	is := got.outcome.Issue[0]
	if got.status != 429 || is.Code != "throttled" || !strings.Contains(is.Diagnostics, "this source may send 2 request(s) per 1h0m0s (burst 2); retry after") {
		t.Fatalf("third request = %d %+v, want 429 throttled", got.status, got.outcome)
	}
	// GCRA: one request every 30 minutes comes back.
	if ra, err := strconv.Atoi(got.header.Get("Retry-After")); err != nil || ra < 1700 || ra > 1800 {
		t.Errorf("Retry-After = %q, want about 1800 s", got.header.Get("Retry-After"))
	}
	// Other sources have their own budget (none).
	for range 3 {
		if got := e.post(t, demo(hb)); got.status == 429 {
			t.Fatal("demo source throttled")
		}
	}
	// Wrong credentials never reach the budget: 401, not 429.
	if got := e.post(t, request{source: "slow", token: "nope", contentType: "application/fhir+json", body: hb}); got.status != 401 {
		t.Errorf("wrong token = %d, want 401", got.status)
	}
	if strings.Contains(e.logs.String(), "slow-token") || bytes.Contains([]byte(e.logs.String()), []byte("Chalmers")) {
		t.Error("logs hold a token or PHI")
	}
	if !strings.Contains(e.logs.String(), `"reason":"rate_limited"`) {
		t.Error("no log line with reason rate_limited")
	}
}
