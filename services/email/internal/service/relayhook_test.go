package service_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	netmail "net/mail"
	"strconv"
	"strings"
	"testing"
	"time"

	deliveryv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/delivery/v1"
	"github.com/carenotify/carenotify/services/email/internal/server"
	"github.com/carenotify/carenotify/services/email/internal/smtptest"
)

// postSendGrid posts body signed with key at ts as SendGrid's signed
// Event Webhook does, and returns the status code.
func postSendGrid(t *testing.T, u string, key *ecdsa.PrivateKey, ts time.Time, body []byte) int {
	t.Helper()
	stamp := strconv.FormatInt(ts.Unix(), 10)
	sum := sha256.Sum256(append([]byte(stamp), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(server.HeaderSendGridSignature, base64.StdEncoding.EncodeToString(sig))
	req.Header.Set(server.HeaderSendGridTimestamp, stamp)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestSendGridEventWebhook(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	h := setup(t, smtptest.Options{CA: smtptest.NewCA(t)},
		"EMAIL_SENDGRID_WEBHOOK_KEY="+base64.StdEncoding.EncodeToString(der))
	h.run(t)
	hook := "http://" + h.cfg.HTTPAddr + "/webhooks/relay/sendgrid"

	const bounceAddr, spamAddr = "zz.canary.sgbounce@example.org", "zz.canary.sgspam@example.org"
	ids := map[string]string{}
	for key, to := range map[string]string{"sg-bounce": bounceAddr, "sg-spam": spamAddr} {
		req := validRequest("acme", key)
		req.To = to
		ids[key] = h.send(t, req).GetMessageId()
	}
	smtpID := map[string]string{} // message id -> Message-ID header at the relay
	for _, m := range h.relay.Wait(2, 15*time.Second) {
		pm, err := netmail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		smtpID[pm.Header.Get("X-Carenotify-Message-Id")] = pm.Header.Get("Message-Id")
	}
	for _, id := range ids {
		h.waitStatus(t, "acme", id, deliveryv1.Status_STATUS_SENT)
	}

	// SendGrid's event shapes (Event Webhook reference), batched.
	now := time.Now()
	events := []map[string]any{
		{"email": bounceAddr, "timestamp": now.Unix(), "event": "delivered", "smtp-id": smtpID[ids["sg-bounce"]], "sg_event_id": "ZGVsaXZlcmVk", "response": "250 OK"},
		{"email": bounceAddr, "timestamp": now.Unix(), "event": "bounce", "type": "bounce", "status": "5.1.1", "reason": "550 5.1.1 " + bounceAddr + " user unknown",
			"smtp-id": smtpID[ids["sg-bounce"]], "sg_event_id": "Ym91bmNlLTE", "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"},
		{"email": spamAddr, "timestamp": now.Unix(), "event": "spamreport", "smtp-id": smtpID[ids["sg-spam"]], "sg_event_id": "c3BhbS0x"},
		{"email": "someone@example.org", "timestamp": now.Unix(), "event": "bounce", "type": "bounce", "status": "5.1.1", "smtp-id": "<not-ours@example.net>", "sg_event_id": "b3RoZXI"},
		{"email": bounceAddr, "timestamp": now.Unix(), "event": "bounce", "type": "blocked", "status": "5.7.1", "smtp-id": smtpID[ids["sg-spam"]], "sg_event_id": "YmxvY2tlZA"},
	}
	body, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}

	// Forged, stale and unsigned posts are refused, and change nothing.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if code := postSendGrid(t, hook, other, now, body); code != http.StatusForbidden {
		t.Errorf("post signed by another key = %d, want 403", code)
	}
	if code := postSendGrid(t, hook, key, now.Add(-2*time.Hour), body); code != http.StatusForbidden {
		t.Errorf("post with a two-hour-old timestamp = %d, want 403", code)
	}
	if resp, err := http.Post(hook, "application/json", bytes.NewReader(body)); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned post = %v, %v; want 403", resp, err)
	}
	if got := h.waitStatus(t, "acme", ids["sg-bounce"], deliveryv1.Status_STATUS_SENT); got.GetReason() != "" {
		t.Errorf("status after refused posts = %v", got)
	}
	if code := postSendGrid(t, hook, key, now, []byte(`{"not":"an array"}`)); code != http.StatusBadRequest {
		t.Errorf("signed post that is not an array = %d, want 400", code)
	}

	if code := postSendGrid(t, hook, key, now, body); code != http.StatusNoContent {
		t.Fatalf("signed post = %d, want 204", code)
	}
	if got := h.waitStatus(t, "acme", ids["sg-bounce"], deliveryv1.Status_STATUS_BOUNCED); got.GetReason() != "relay_bounce" {
		t.Errorf("bounced message = %v, want reason relay_bounce", got)
	}
	if got := h.waitStatus(t, "acme", ids["sg-spam"], deliveryv1.Status_STATUS_OPTED_OUT); got.GetReason() != "complaint" {
		t.Errorf("complained-about message = %v, want reason complaint", got)
	}
	if ev := h.waitEvent(t, "acme", "bounced"); ev.GetMessageId() != ids["sg-bounce"] || ev.GetReason() != "relay_bounce" {
		t.Errorf("bounced event = %v", ev)
	}
	// Both addresses are suppressed now.
	for key, to := range map[string]string{"sg-bounce-2": bounceAddr, "sg-spam-2": spamAddr} {
		req := validRequest("acme", key)
		req.To = to
		_, err := h.sendErr(t, req)
		want := "hard_bounce"
		if to == spamAddr {
			want = "complaint"
		}
		wantSuppressed(t, err, want)
	}
	// The same batch again (SendGrid retries) changes nothing and is fine.
	if code := postSendGrid(t, hook, key, now, body); code != http.StatusNoContent {
		t.Errorf("repeated post = %d, want 204", code)
	}
	if strings.Contains(h.logs.String(), "canary") {
		t.Error("logs hold a recipient")
	}
}
