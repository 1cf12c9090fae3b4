package service_test

import (
	"bytes"
	"errors"
	netmail "net/mail"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	deliveryv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/delivery/v1"
	"github.com/carenotify/carenotify/services/email/internal/server"
	"github.com/carenotify/carenotify/services/email/internal/smtptest"
	"github.com/carenotify/carenotify/services/email/internal/token"
)

const bounceDomain = "bounces.carenotify.localhost"

// deliverReport sends a report to the bounce listener as a reporting MTA
// would (MAIL FROM:<>), and returns the RCPT TO error, if any.
func deliverReport(t *testing.T, addr, rcpt string, data []byte) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("relay.example.net"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("end of DATA: %v", err)
	}
	return c.Quit()
}

// fixture returns a report from the report package's testdata, addressed
// to rcpt.
func fixture(t *testing.T, name, rcpt string) []byte {
	t.Helper()
	b, err := os.ReadFile("../report/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(b, []byte("bounces+TOKEN@"+bounceDomain), []byte(rcpt))
}

func TestVERPAndAsynchronousBounces(t *testing.T) {
	keyFile := tokenKeyFile(t)
	h := setup(t, smtptest.Options{CA: smtptest.NewCA(t)},
		"EMAIL_BOUNCE_DOMAIN="+bounceDomain,
		"EMAIL_BOUNCE_KEY_FILE="+keyFile,
		"EMAIL_BOUNCE_SMTP_ADDR=127.0.0.1:0",
	)
	h.cfg.BounceListener = listen(t)
	listener := h.cfg.BounceListener.Addr().String()
	h.run(t)

	// Two messages: one will bounce, one will be complained about.
	ids := map[string]string{}
	for _, key := range []string{"dsn", "arf"} {
		req := validRequest("acme", key)
		req.To = "zz.canary." + key + "@example.org"
		ids[key] = h.send(t, req).GetMessageId()
	}
	msgs := h.relay.Wait(2, 15*time.Second)
	if len(msgs) != 2 {
		t.Fatalf("relay received %d messages, want 2", len(msgs))
	}
	verp := map[string]string{} // message id -> MAIL FROM
	for _, m := range msgs {
		pm, err := netmail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		verp[pm.Header.Get("X-Carenotify-Message-Id")] = m.From
	}
	for key, id := range ids {
		from := verp[id]
		if !strings.HasPrefix(from, "bounces+") || !strings.HasSuffix(from, "@"+bounceDomain) || strings.Contains(from, "canary") {
			t.Fatalf("MAIL FROM of %s = %q, want a VERP address", key, from)
		}
		if local, _, _ := strings.Cut(from, "@"); len(local) > 64 {
			t.Errorf("VERP local part is %d octets", len(local))
		}
		h.waitStatus(t, "acme", id, deliveryv1.Status_STATUS_SENT)
	}

	// A hard bounce (RFC 3464).
	if err := deliverReport(t, listener, verp[ids["dsn"]], fixture(t, "dsn-failed.eml", verp[ids["dsn"]])); err != nil {
		t.Fatalf("DSN refused: %v", err)
	}
	got := h.waitStatus(t, "acme", ids["dsn"], deliveryv1.Status_STATUS_BOUNCED)
	if got.GetReason() != "dsn_5xx" {
		t.Errorf("GetStatus() after DSN = %v, want bounced dsn_5xx", got)
	}
	if ev := h.waitEvent(t, "acme", "bounced"); ev.GetMessageId() != ids["dsn"] || ev.GetReason() != "dsn_5xx" || ev.GetIdempotencyKey() != "dsn" {
		t.Errorf("bounced event = %v", ev)
	}

	// A complaint (RFC 5965), sent upper-cased by a relay that folds case.
	upper := strings.ToUpper(verp[ids["arf"]])
	if err := deliverReport(t, listener, upper, fixture(t, "arf-abuse.eml", upper)); err != nil {
		t.Fatalf("ARF report refused: %v", err)
	}
	got = h.waitStatus(t, "acme", ids["arf"], deliveryv1.Status_STATUS_OPTED_OUT)
	if got.GetReason() != "complaint" {
		t.Errorf("GetStatus() after ARF = %v, want opted_out complaint", got)
	}
	ev := h.waitEvent(t, "acme", "opted_out")
	if diff := cmp.Diff([]string{ids["arf"], "complaint", "arf"}, []string{ev.GetMessageId(), ev.GetReason(), ev.GetIdempotencyKey()}); diff != "" {
		t.Errorf("opted_out event (-want +got):\n%s", diff)
	}

	// A soft DSN changes nothing.
	if err := deliverReport(t, listener, verp[ids["dsn"]], fixture(t, "dsn-delayed.eml", verp[ids["dsn"]])); err != nil {
		t.Fatalf("delayed DSN refused: %v", err)
	}

	// Forged, unknown and misdirected addresses are refused with 550.
	otherKeys, err := token.New(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	ownKeys, err := token.Load(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		give string
	}{
		{name: "forged token", give: server.VERPAddress(otherKeys, bounceDomain, ids["dsn"])},
		{name: "unknown message", give: server.VERPAddress(ownKeys, bounceDomain, uuid.NewString())},
		{name: "other domain", give: strings.Replace(verp[ids["dsn"]], bounceDomain, "example.org", 1)},
		{name: "not a VERP address", give: "postmaster@" + bounceDomain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := deliverReport(t, listener, tt.give, fixture(t, "dsn-failed.eml", tt.give))
			var se *smtp.SMTPError
			if !errors.As(err, &se) || se.Code != 550 {
				t.Errorf("RCPT TO = %v, want 550", err)
			}
		})
	}
	if got := h.waitStatus(t, "acme", ids["dsn"], deliveryv1.Status_STATUS_BOUNCED); got.GetReason() != "dsn_5xx" {
		t.Errorf("GetStatus() at the end = %v", got)
	}
	if strings.Contains(h.logs.String(), "canary") {
		t.Error("logs hold a recipient")
	}
}
