package server_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/pkg/store/redisproc"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify/fhirnotifytest"
	"github.com/carenotify/carenotify/services/ingest/internal/replaycache"
	"github.com/carenotify/carenotify/services/ingest/internal/server"
)

// The lab source signs its requests; oldSecret is being rotated out.
var (
	labSecret = []byte("0d6f5c1e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b")
	oldSecret = []byte("f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899")
	hmacNow   = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
)

// hmacSources are the test sources plus lab (auth hmac, 300 s skew).
var hmacSources = append(append(config.Sources{}, sources...),
	config.Source{Name: "lab", Tenant: "north", Auth: config.AuthHMAC, HMAC: config.HMAC{SecretEnv: "LAB_SECRET"}})

func hmacEnv(t *testing.T, secrets ...[]byte) *env {
	t.Helper()
	return newEnvWith(t, func(o *server.Options) {
		o.Sources = hmacSources
		o.HMACSecrets = map[string][][]byte{"lab": secrets}
		o.Now = func() time.Time { return hmacNow }
	})
}

// signed is a request of the lab source with the given signature header.
func signed(body []byte, sig string) request {
	r := request{source: "lab", contentType: "application/fhir+json", body: body}
	if sig != "" {
		r.header = map[string]string{server.SignatureHeader: sig}
	}
	return r
}

func TestHMAC(t *testing.T) {
	body := fhirnotifytest.AppointmentNotification(t, fhirnotifytest.BookedOptions)
	good := server.Sign(hmacNow, body, labSecret)
	ts := strconv.FormatInt(hmacNow.Unix(), 10)
	type want struct {
		status     int
		code       string
		diagnostic string
	}
	tests := []struct {
		name    string
		secrets [][]byte // the receiver's; labSecret when nil
		give    request
		want    want
	}{
		{name: "valid", give: signed(body, good), want: want{200, "informational", "accepted 1 event(s)"}},
		{name: "rotation: sender signs with both", give: signed(body, server.Sign(hmacNow, body, oldSecret, labSecret)),
			want: want{200, "informational", "accepted 1 event(s)"}},
		{name: "rotation: receiver holds both", secrets: [][]byte{labSecret, oldSecret}, give: signed(body, server.Sign(hmacNow, body, oldSecret)),
			want: want{200, "informational", "accepted 1 event(s)"}},
		{name: "299 s behind", give: signed(body, server.Sign(hmacNow.Add(-299*time.Second), body, labSecret)),
			want: want{200, "informational", "accepted 1 event(s)"}},
		{name: "missing", give: signed(body, ""), want: want{401, "security", "no X-Carenotify-Signature header"}},
		{name: "bearer instead", give: request{source: "lab", token: "epic-token", contentType: "application/fhir+json", body: body},
			want: want{401, "security", "no X-Carenotify-Signature header"}},
		{name: "no t", give: signed(body, good[strings.Index(good, ",")+1:]), want: want{401, "security", "malformed X-Carenotify-Signature header: no t"}},
		{name: "no v1", give: signed(body, "t="+ts), want: want{401, "security", "malformed X-Carenotify-Signature header: no v1"}},
		{name: "short v1", give: signed(body, "t="+ts+",v1=abcd"), want: want{401, "security", "v1 must be 64 hex digits"}},
		{name: "t not a number", give: signed(body, strings.Replace(good, "t="+ts, "t=soon", 1)), want: want{401, "security", "t must be a positive integer"}},
		{name: "no key=value", give: signed(body, good+",garbage"), want: want{401, "security", "every element must be key=value"}},
		{name: "stale", give: signed(body, server.Sign(hmacNow.Add(-301*time.Second), body, labSecret)),
			want: want{401, "security", "t is behind the receiver's clock by more than the 300 s allowed"}},
		{name: "future", give: signed(body, server.Sign(hmacNow.Add(301*time.Second), body, labSecret)),
			want: want{401, "security", "t is ahead of the receiver's clock"}},
		{name: "wrong secret", give: signed(body, server.Sign(hmacNow, body, oldSecret)), want: want{401, "security", "no v1 signature matches"}},
		{name: "body changed", give: signed(bytes.Replace(body, []byte(`"booked"`), []byte(`"cancelled"`), 1), good),
			want: want{401, "security", "no v1 signature matches"}},
		{name: "signature of another timestamp", give: signed(body, strings.Replace(good, "t="+ts, "t="+strconv.FormatInt(hmacNow.Unix()-1, 10), 1)),
			want: want{401, "security", "no v1 signature matches"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secrets := tt.secrets
			if secrets == nil {
				secrets = [][]byte{labSecret}
			}
			e := hmacEnv(t, secrets...)
			got := e.post(t, tt.give)
			is := got.outcome.Issue[0]
			if got.status != tt.want.status || is.Code != tt.want.code || !strings.Contains(is.Diagnostics, tt.want.diagnostic) {
				t.Fatalf("answer = %d %s %q, want %d %s %q", got.status, is.Code, is.Diagnostics, tt.want.status, tt.want.code, tt.want.diagnostic)
			}
			wantEvents := 0
			if tt.want.status == 200 {
				wantEvents = 1
			} else if ch := got.header.Get("WWW-Authenticate"); ch != `Carenotify-HMAC header="X-Carenotify-Signature"` {
				t.Errorf("WWW-Authenticate = %q", ch)
			}
			if n := len(e.messages(t, "EHR_EVENTS")); n != wantEvents {
				t.Errorf("EHR_EVENTS holds %d events, want %d", n, wantEvents)
			}
			// Nothing of the body, the signature or the secret in the answer or the logs.
			for _, s := range []string{"Chalmers", "Peter", "1974-12-25", string(labSecret), string(oldSecret), good[len("t=")+len(ts)+len(",v1="):]} {
				if strings.Contains(is.Diagnostics, s) || strings.Contains(e.logs.String(), s) {
					t.Errorf("answer or logs hold %q", s)
				}
			}
		})
	}
}

// TestHMACReplay: a signature is accepted once, also across receivers
// sharing the replay cache (replicas); a refused delivery frees it.
func TestHMACReplay(t *testing.T) {
	body := fhirnotifytest.AppointmentNotification(t, fhirnotifytest.BookedOptions)
	sig := server.Sign(hmacNow, body, labSecret)
	e := hmacEnv(t, labSecret)
	if got := e.post(t, signed(body, sig)); got.status != 200 {
		t.Fatalf("first post = %d %+v", got.status, got.outcome)
	}
	got := e.post(t, signed(body, sig))
	if is := got.outcome.Issue[0]; got.status != 401 || !strings.Contains(is.Diagnostics, "this signature was accepted before") {
		t.Fatalf("replay = %d %+v, want 401 replay", got.status, got.outcome)
	}
	// The replay cache key lives at least as long as the ±300 s window.
	ttl, err := e.redis.PTTL(t.Context(), replaycache.Key("north", "lab", sigBytes(t, sig))).Result()
	if err != nil || ttl < 600*time.Second {
		t.Errorf("replay key TTL = %v, %v; want >= 600s", ttl, err)
	}
	// A fresh signature of the same body is accepted (the event is then a duplicate).
	if got := e.post(t, signed(body, server.Sign(hmacNow.Add(time.Second), body, labSecret))); got.status != 200 {
		t.Errorf("re-signed post = %d %+v, want 200", got.status, got.outcome)
	}
	if !strings.Contains(e.logs.String(), `"reason":"hmac_replay"`) {
		t.Errorf("no log line with reason hmac_replay:\n%s", e.logs.String())
	}

	// A request answered 5xx is not acknowledged: its signature is released.
	e2 := hmacEnv(t, labSecret)
	e2.ns.Shutdown()
	e2.ns.WaitForShutdown()
	sig2 := server.Sign(hmacNow, body, labSecret)
	if got := e2.post(t, signed(body, sig2)); got.status != 503 {
		t.Fatalf("post with NATS down = %d %+v, want 503", got.status, got.outcome)
	}
	if n, err := e2.redis.Exists(t.Context(), replaycache.Key("north", "lab", sigBytes(t, sig2))).Result(); err != nil || n != 0 {
		t.Errorf("signature of a 503 still claimed: %d, %v", n, err)
	}
}

// TestHMACRedisDown: without the replay cache, signed requests are
// refused with 503 (fail closed).
func TestHMACRedisDown(t *testing.T) {
	rs, err := redisproc.Start(t.Context(), redisproc.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := store.NewRedis(t.Context(), rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	e := newEnvWith(t, func(o *server.Options) {
		o.Sources = hmacSources
		o.HMACSecrets = map[string][][]byte{"lab": {labSecret}}
		o.Now = func() time.Time { return hmacNow }
		o.Replay = replaycache.New(rc)
	})
	rs.Stop()
	body := fhirnotifytest.AppointmentNotification(t, fhirnotifytest.BookedOptions)
	got := e.post(t, signed(body, server.Sign(hmacNow, body, labSecret)))
	if is := got.outcome.Issue[0]; got.status != 503 || is.Code != "transient" || got.header.Get("Retry-After") == "" ||
		!strings.Contains(is.Diagnostics, "cannot check signatures for replay") {
		t.Fatalf("post with the replay cache down = %d %+v, want 503 transient", got.status, got.outcome)
	}
	if n := len(e.messages(t, "EHR_EVENTS")); n != 0 {
		t.Errorf("EHR_EVENTS holds %d events, want 0", n)
	}
}

func sigBytes(t *testing.T, header string) []byte {
	t.Helper()
	_, v1, ok := strings.Cut(header, ",v1=")
	if !ok {
		t.Fatalf("no v1 in %q", header)
	}
	b := make([]byte, len(v1)/2)
	for i := range b {
		n, err := strconv.ParseUint(v1[2*i:2*i+2], 16, 8)
		if err != nil {
			t.Fatal(err)
		}
		b[i] = byte(n)
	}
	return b
}
