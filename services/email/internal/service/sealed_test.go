package service_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
	deliveryv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/delivery/v1"
	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/metrics"
	"github.com/carenotify/carenotify/services/email/internal/queue"
	"github.com/carenotify/carenotify/services/email/internal/records"
	"github.com/carenotify/carenotify/services/email/internal/smtptest"
)

// queueOnly returns the Send side of the service, app.Service on the real
// records store and sealed outbox, without delivery workers, on h's NATS,
// Redis and keyring: what it queues stays in OUTBOX_EMAIL until h.run.
func queueOnly(t *testing.T, h *harness) *app.Service {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if err := bus.EnsureStreams(t.Context(), h.js, queue.Streams(1)...); err != nil {
		t.Fatal(err)
	}
	sealer, err := envelope.NewServiceSealer(t.Context(), h.js, h.cfg.KeyringDir, 1, logger)
	if err != nil {
		t.Fatal(err)
	}
	return app.NewService(app.ServiceOptions{
		Store: records.New(h.rdb), Outbox: queue.NewOutbox(h.js, sealer), Events: queue.NewEvents(h.js),
		Metrics: metrics.New(prometheus.NewRegistry()), Logger: logger,
		DefaultExpiry: time.Hour, MaxExpiry: 7 * 24 * time.Hour, MaxBytes: 1 << 20,
	})
}

func queueSend(t *testing.T, svc *app.Service, req app.SendRequest) string {
	t.Helper()
	res, err := svc.Send(t.Context(), req)
	if err != nil {
		t.Fatalf("Send() = %v", err)
	}
	return res.MessageID
}

// rawOutbox returns the message stored in OUTBOX_EMAIL for message id.
func rawOutbox(t *testing.T, h *harness, id string) *jetstream.RawStreamMsg {
	t.Helper()
	stream, err := h.js.Stream(t.Context(), bus.OutboxStream(queue.Channel))
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		raw, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			continue // deleted
		}
		if raw.Header.Get(queue.HeaderMessageID) == id {
			return raw
		}
	}
	t.Fatalf("no outbox message for %s", id)
	return nil
}

// containsAny returns the canaries text holds, ignoring case.
func containsAny(text string, canaries ...string) []string {
	var found []string
	for _, c := range canaries {
		if strings.Contains(strings.ToLower(text), strings.ToLower(c)) {
			found = append(found, c)
		}
	}
	return found
}

// TestOutboxIsSealed reads the outbox message as it rests in JetStream,
// before any worker runs, then lets the workers deliver it.
func TestOutboxIsSealed(t *testing.T) {
	h := setup(t, smtptest.Options{CA: smtptest.NewCA(t)})
	svc := queueOnly(t, h)
	const (
		rcpt    = "zz.canary.sealed@example.org"
		subject = "ZZCanarySealedSubject"
		text    = "ZZCanarySealedText"
		html    = "ZZCanarySealedHTML"
	)
	id := queueSend(t, svc, app.SendRequest{
		Tenant: "acme", IdempotencyKey: "sealed-1", To: rcpt, Subject: "Results for " + subject,
		TextBody: text, HTMLBody: "<p>" + html + "</p>", Security: app.SecurityPHI,
		JourneyInstance: "j-1", Step: "s-1",
	})

	raw := rawOutbox(t, h, id)
	if !bytes.HasPrefix(raw.Data, []byte("CN\x01")) {
		t.Errorf("outbox payload does not start with the sealed-value header: %q", raw.Data[:min(len(raw.Data), 8)])
	}
	hdr, _ := json.Marshal(raw.Header)
	if found := containsAny(string(raw.Data)+string(hdr), rcpt, "zz.canary", subject, text, html); len(found) > 0 {
		t.Errorf("outbox message at rest holds %q", found)
	}
	wantHdr := map[string]string{
		bus.HeaderTenant: "acme", bus.HeaderChannel: "email", queue.HeaderMessageID: id, jetstream.MsgIDHeader: id,
	}
	for k, v := range wantHdr {
		if got := raw.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if len(raw.Header) != len(wantHdr) {
		t.Errorf("outbox headers = %v, want only %v", raw.Header, wantHdr)
	}

	h.run(t)
	msgs := h.relay.Wait(1, 15*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("relay received %d messages, want 1", len(msgs))
	}
	pm, err := netmail.ReadMessage(bytes.NewReader(msgs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(pm.Body)
	if len(msgs[0].To) != 1 || msgs[0].To[0] != rcpt || !strings.Contains(pm.Header.Get("Subject"), subject) ||
		!strings.Contains(string(body), text) || !strings.Contains(string(body), html) {
		t.Errorf("relay received rcpt %v, subject %q, body %q; want the queued message", msgs[0].To, pm.Header.Get("Subject"), body)
	}
	h.waitStatus(t, "acme", id, deliveryv1.Status_STATUS_SENT)
}

// TestRefusedOutboxMessages puts forged messages in the outbox, claiming
// to be a queued message (the victim, whose real outbox message is
// removed), and checks that none reaches the relay, the victim's record is
// failed for "tampered", the forgery is kept on dead.email.<tenant>, and
// another message queued alongside is still delivered.
func TestRefusedOutboxMessages(t *testing.T) {
	const plainRcpt = "zz.canary.plain@example.org"
	tests := []struct {
		name string
		// forge returns the forged payload, given the sealed payloads of
		// the victim and of the other message.
		forge func(t *testing.T, victimID string, victim, other []byte) []byte
		// cause is the dead letter's Cn-Reason.
		cause string
	}{
		{
			name: "one byte flipped",
			forge: func(_ *testing.T, _ string, victim, _ []byte) []byte {
				forged := bytes.Clone(victim)
				forged[len(forged)-17] ^= 0x01 // the last ciphertext byte, before the tag
				return forged
			},
			cause: queue.CauseTampered,
		},
		{
			name:  "sealed for another message",
			forge: func(_ *testing.T, _ string, _, other []byte) []byte { return bytes.Clone(other) },
			cause: queue.CauseTampered,
		},
		{
			name: "not sealed",
			forge: func(t *testing.T, victimID string, _, _ []byte) []byte {
				plain, err := json.Marshal(map[string]any{
					"v": 1, "id": victimID, "tenant": "acme", "idempotencyKey": "victim", "to": plainRcpt,
					"subject": "ZZCanaryPlain", "textBody": "ZZCanaryPlain", "security": 1,
					"expiresAt": time.Now().Add(time.Hour), "queuedAt": time.Now(),
				})
				if err != nil {
					t.Fatal(err)
				}
				return plain
			},
			cause: queue.CauseNotSealed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := setup(t, smtptest.Options{CA: smtptest.NewCA(t)})
			svc := queueOnly(t, h)
			req := func(key string) app.SendRequest {
				return app.SendRequest{
					Tenant: "acme", IdempotencyKey: key, To: key + "@example.org", Subject: "s " + key, TextBody: "b " + key,
				}
			}
			victimID := queueSend(t, svc, req("victim"))
			otherID := queueSend(t, svc, req("other"))
			victim, other := rawOutbox(t, h, victimID), rawOutbox(t, h, otherID)
			forged := tt.forge(t, victimID, victim.Data, other.Data)

			stream, err := h.js.Stream(t.Context(), bus.OutboxStream(queue.Channel))
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.DeleteMsg(t.Context(), victim.Sequence); err != nil {
				t.Fatalf("remove the victim's outbox message: %v", err)
			}
			hdr := nats.Header{
				bus.HeaderTenant: []string{"acme"}, bus.HeaderChannel: []string{"email"},
				queue.HeaderMessageID: []string{victimID},
			}
			if _, err := bus.Publish(t.Context(), h.js, "outbox.email.acme", forged, uuid.NewString(), hdr); err != nil {
				t.Fatal(err)
			}

			h.run(t)
			h.waitStatus(t, "acme", otherID, deliveryv1.Status_STATUS_SENT)
			got := h.waitStatus(t, "acme", victimID, deliveryv1.Status_STATUS_FAILED)
			if got.GetReason() != app.ReasonTampered || got.GetAttempts() != 0 {
				t.Errorf("victim's record = %v, want failed for %q without attempts", got, app.ReasonTampered)
			}
			if ev := h.waitEvent(t, "acme", "failed"); ev.GetMessageId() != victimID || ev.GetReason() != app.ReasonTampered {
				t.Errorf("failed event = %v", ev)
			}
			waitOutboxEmpty(t, h)

			msgs := h.relay.Messages()
			if len(msgs) != 1 {
				t.Fatalf("relay received %d messages, want only the other one", len(msgs))
			}
			if pm, err := netmail.ReadMessage(bytes.NewReader(msgs[0].Data)); err != nil || pm.Header.Get("X-Carenotify-Message-Id") != otherID {
				t.Errorf("relay received %v (%v), want the other message %s", msgs[0].To, err, otherID)
			}

			dead := waitDeadLetter(t, h, "acme")
			for k, v := range map[string]string{
				bus.HeaderTenant: "acme", bus.HeaderChannel: "email", bus.HeaderReason: tt.cause, queue.HeaderMessageID: victimID,
			} {
				if got := dead.Header.Get(k); got != v {
					t.Errorf("dead letter header %s = %q, want %q", k, got, v)
				}
			}
			if tt.cause == queue.CauseNotSealed {
				// Possibly PHI in clear: sealed before it rests.
				if dead.Header.Get(bus.HeaderKind) != queue.KindDead || !bytes.HasPrefix(dead.Data, []byte("CN")) {
					t.Errorf("dead letter of an unsealed message is not sealed: kind %q", dead.Header.Get(bus.HeaderKind))
				}
				if found := containsAny(string(dead.Data), plainRcpt, "ZZCanaryPlain"); len(found) > 0 {
					t.Errorf("dead letter holds %q in clear", found)
				}
			} else if !bytes.Equal(dead.Data, forged) || dead.Header.Get(bus.HeaderKind) != envelope.KindEmailOutbox {
				t.Errorf("dead letter (kind %q) is not the refused sealed payload as it was", dead.Header.Get(bus.HeaderKind))
			}

			logs := h.logs.String()
			if !strings.Contains(logs, "outbox message refused") || !strings.Contains(logs, victimID) {
				t.Error("logs do not report the refused message")
			}
			if found := containsAny(logs, plainRcpt, "ZZCanaryPlain", "victim@example.org"); len(found) > 0 {
				t.Errorf("logs hold %q", found)
			}
		})
	}
}

// waitDeadLetter returns the last dead letter on dead.email.<tenant>.
func waitDeadLetter(t *testing.T, h *harness, tenant string) *jetstream.RawStreamMsg {
	t.Helper()
	stream, err := h.js.Stream(t.Context(), queue.StreamDead)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		raw, err := stream.GetLastMsgForSubject(t.Context(), fmt.Sprintf("dead.email.%s", tenant))
		if err == nil {
			return raw
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter for %s: %v", tenant, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
