package service_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestTamperedConsentFailsClosed: a consent record that does not open
// stops the send and retries the event; once the record opens again the
// step sends.
func TestTamperedConsentFailsClosed(t *testing.T) {
	h := startWith(t, confirmationOnly(t))
	ctx := t.Context()
	const emailT = "tampered.consent.canary@example.org"
	if code, body := h.httpDo(t, http.MethodPut, "/v1/consent/demo/"+canaryPatient+"/email/treatment",
		`{"state": "granted", "source": "admin"}`); code != http.StatusOK {
		t.Fatalf("PUT consent = %d %s", code, body)
	}
	rc := redis.NewClient(mustParseURL(t, h.cfg.RedisURL))
	defer rc.Close()
	keys, err := rc.Keys(ctx, "cn:{demo}:consent:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("KEYS = %v, %v", keys, err)
	}
	good, err := rc.Get(ctx, keys[0]).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), good...)
	bad[len(bad)-5] ^= 0x01
	if err := rc.Set(ctx, keys[0], bad, 0).Err(); err != nil {
		t.Fatal(err)
	}
	h.publish(t, patientBooking("ev-t1", "Appointment/901", emailT))
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(h.metrics(t), `journey_events_total{action="booked",kind="appointment",outcome="retry"}`) {
		if time.Now().After(deadline) {
			t.Fatalf("event not retried with a tampered record:\n%s", grepLines(h.metrics(t), "journey_"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(h.email.callsTo(emailT)); n != 0 {
		t.Fatalf("%d sends with a tampered consent record, want 0", n)
	}
	if code, _ := h.httpDo(t, http.MethodGet, "/v1/consent/demo/"+canaryPatient+"/email/treatment", ""); code != http.StatusServiceUnavailable {
		t.Errorf("GET tampered consent = %d, want 503", code)
	}
	if err := rc.Set(ctx, keys[0], good, 0).Err(); err != nil {
		t.Fatal(err)
	}
	h.waitSends(t, wantKey("Appointment/901", 0), 1)
}
