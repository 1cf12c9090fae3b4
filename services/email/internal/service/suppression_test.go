package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	deliveryv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/delivery/v1"
	emailv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/email/v1"
	"github.com/carenotify/carenotify/services/email/internal/smtptest"
)

const suppressionAdminToken = "admin-token-for-email-tests"

// adminDo calls the admin API with token and returns status and body.
func adminDo(t *testing.T, method, u, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sendErr calls Send and returns its error.
func (h *harness) sendErr(t *testing.T, req *emailv1.SendRequest) (*emailv1.SendResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return h.client.Send(ctx, req)
}

// wantSuppressed checks that err refuses a Send as suppressed for reason,
// without the address.
func wantSuppressed(t *testing.T, err error, reason string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.FailedPrecondition {
		t.Fatalf("Send() to a suppressed address = %v, want FAILED_PRECONDITION", err)
	}
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	if info == nil || info.GetReason() != "suppressed" || info.GetMetadata()["suppression"] != reason {
		t.Errorf("ErrorInfo = %v, want reason suppressed, suppression %s", info, reason)
	}
	if strings.Contains(strings.ToLower(st.Message()), "canary") {
		t.Errorf("status message quotes the address: %q", st.Message())
	}
}

func TestBouncesAndComplaintsSuppress(t *testing.T) {
	h := setup(t, smtptest.Options{CA: smtptest.NewCA(t), DSN: true},
		"EMAIL_BOUNCE_DOMAIN="+bounceDomain,
		"EMAIL_BOUNCE_KEY_FILE="+tokenKeyFile(t),
		"EMAIL_BOUNCE_SMTP_ADDR=127.0.0.1:0",
		"EMAIL_ADMIN_TOKEN="+suppressionAdminToken,
	)
	h.cfg.BounceListener = listen(t)
	listener := h.cfg.BounceListener.Addr().String()
	h.run(t)
	admin := "http://" + h.cfg.HTTPAddr + "/admin/suppressions/acme"

	const dsnAddr, arfAddr = "zz.canary.dsn@example.org", "zz.canary.arf@example.org"
	ids := map[string]string{}
	for key, to := range map[string]string{"dsn-1": dsnAddr, "arf-1": arfAddr} {
		req := validRequest("acme", key)
		req.To = to
		ids[key] = h.send(t, req).GetMessageId()
	}
	msgs := h.relay.Wait(2, 15*time.Second)
	verp := map[string]string{}
	for _, m := range msgs {
		pm, err := netmail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		id := pm.Header.Get("X-Carenotify-Message-Id")
		verp[id] = m.From
		// The relay offers DSN: the default request (RFC 3461) goes with it.
		if m.MailOptions.EnvelopeID != id || m.MailOptions.Return != "HDRS" || len(m.RcptOptions) != 1 ||
			fmt.Sprint(m.RcptOptions[0].Notify) != "[FAILURE DELAY]" {
			t.Errorf("DSN request = ENVID %q RET %q NOTIFY %v, want ENVID the message id, HDRS, FAILURE,DELAY",
				m.MailOptions.EnvelopeID, m.MailOptions.Return, m.RcptOptions)
		}
	}
	for _, id := range ids {
		h.waitStatus(t, "acme", id, deliveryv1.Status_STATUS_SENT)
	}

	// Nothing is suppressed yet.
	if code, body := adminDo(t, http.MethodGet, admin, suppressionAdminToken, ""); code != http.StatusOK || !strings.Contains(body, `"suppressions":[]`) {
		t.Fatalf("list before any bounce = %d %s", code, body)
	}

	// A DSN (RFC 3464, 5.1.1) on the bounce listener suppresses the address.
	rcpt := verp[ids["dsn-1"]]
	if err := deliverReport(t, listener, rcpt, fixture(t, "dsn-failed.eml", rcpt)); err != nil {
		t.Fatalf("DSN refused: %v", err)
	}
	h.waitStatus(t, "acme", ids["dsn-1"], deliveryv1.Status_STATUS_BOUNCED)
	req := validRequest("acme", "dsn-2")
	req.To = strings.ToUpper(dsnAddr) // a case variant is the same address
	_, err := h.sendErr(t, req)
	wantSuppressed(t, err, "hard_bounce")

	// The same idempotency key as before still answers with the first message.
	req = validRequest("acme", "dsn-1")
	req.To = dsnAddr
	if resp := h.send(t, req); !resp.GetDuplicate() || resp.GetMessageId() != ids["dsn-1"] {
		t.Errorf("repeated key after suppression = %v, want the first message", resp)
	}
	// Another tenant's list is its own.
	req = validRequest("other", "dsn-3")
	req.To = dsnAddr
	h.send(t, req)

	// A complaint (RFC 5965) suppresses too.
	rcpt = verp[ids["arf-1"]]
	if err := deliverReport(t, listener, rcpt, fixture(t, "arf-abuse.eml", rcpt)); err != nil {
		t.Fatalf("ARF report refused: %v", err)
	}
	h.waitStatus(t, "acme", ids["arf-1"], deliveryv1.Status_STATUS_OPTED_OUT)
	req = validRequest("acme", "arf-2")
	req.To = arfAddr
	_, err = h.sendErr(t, req)
	wantSuppressed(t, err, "complaint")

	// The admin API lists both, with their evidence, and no address.
	code, body := adminDo(t, http.MethodGet, admin, suppressionAdminToken, "")
	if code != http.StatusOK {
		t.Fatalf("list = %d %s", code, body)
	}
	if strings.Contains(body, "canary") {
		t.Errorf("list holds an address: %s", body)
	}
	var list struct {
		Suppressions []struct {
			AddressHash string `json:"address_hash"`
			Reason      string `json:"reason"`
			Source      string `json:"source"`
			MessageID   string `json:"message_id"`
			ReportID    string `json:"report_id"`
			Status      string `json:"status"`
		} `json:"suppressions"`
		Next string `json:"next"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	type entry struct{ Reason, Source, MessageID, ReportID, Status string }
	var got []entry
	for _, e := range list.Suppressions {
		got = append(got, entry{e.Reason, e.Source, e.MessageID, e.ReportID, e.Status})
	}
	want := []entry{
		{"hard_bounce", "dsn", ids["dsn-1"], "<20261123030000.RAA14128@relay.example.net>", "5.1.1"},
		{"complaint", "arf", ids["arf-1"], "<arf.8812.abuse@feedback.mailbox.example>", "abuse"},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || list.Next != "" {
		t.Errorf("list = %+v, want %+v", got, want)
	}

	// Look the DSN address up by address (in the body, never the URL).
	code, body = adminDo(t, http.MethodPost, admin+"/lookup", suppressionAdminToken, `{"address":"`+dsnAddr+`"}`)
	if code != http.StatusOK || !strings.Contains(body, list.Suppressions[0].AddressHash) || strings.Contains(body, "canary") {
		t.Fatalf("lookup = %d %s", code, body)
	}
	code, _ = adminDo(t, http.MethodPost, admin+"/lookup", suppressionAdminToken, `{"address":"nobody@example.org"}`)
	if code != http.StatusNotFound {
		t.Errorf("lookup of an address not on the list = %d, want 404", code)
	}

	// An operator adds an address by hand (the patient called): later Sends
	// are refused; adding it again keeps the first entry.
	const manualAddr = "zz.canary.manual@example.org"
	code, body = adminDo(t, http.MethodPost, admin, suppressionAdminToken,
		`{"address":"`+manualAddr+`","reason":"request","ticket":"INC-4711"}`)
	if code != http.StatusCreated || !strings.Contains(body, `"reason":"request"`) || !strings.Contains(body, `"source":"admin"`) ||
		!strings.Contains(body, `"report_id":"INC-4711"`) || strings.Contains(body, "canary") {
		t.Fatalf("add = %d %s, want 201 with the entry and no address", code, body)
	}
	req = validRequest("acme", "manual-1")
	req.To = manualAddr
	_, err = h.sendErr(t, req)
	wantSuppressed(t, err, "request")
	code, body = adminDo(t, http.MethodPost, admin, suppressionAdminToken, `{"address":"`+strings.ToUpper(manualAddr)+`","reason":"other"}`)
	if code != http.StatusOK || !strings.Contains(body, `"reason":"request"`) {
		t.Errorf("adding again = %d %s, want 200 with the first entry", code, body)
	}

	// Refused without the token, with a wrong one, and for bad input.
	for _, tt := range []struct {
		name, method, url, token, body string
		want                           int
	}{
		{"no token", http.MethodGet, admin, "", "", http.StatusUnauthorized},
		{"wrong token", http.MethodGet, admin, "wrong-token-wrong-token", "", http.StatusUnauthorized},
		{"bad limit", http.MethodGet, admin + "?limit=0", suppressionAdminToken, "", http.StatusBadRequest},
		{"bad cursor", http.MethodGet, admin + "?cursor=x", suppressionAdminToken, "", http.StatusBadRequest},
		{"bad tenant", http.MethodGet, "http://" + h.cfg.HTTPAddr + "/admin/suppressions/a.b", suppressionAdminToken, "", http.StatusBadRequest},
		{"unknown hash", http.MethodDelete, admin + "/" + strings.Repeat("0", 64), suppressionAdminToken, "", http.StatusNotFound},
		{"lookup without address", http.MethodPost, admin + "/lookup", suppressionAdminToken, `{}`, http.StatusBadRequest},
		{"add without address", http.MethodPost, admin, suppressionAdminToken, `{"reason":"request"}`, http.StatusBadRequest},
		{"add with a display name", http.MethodPost, admin, suppressionAdminToken, `{"address":"Jane <j@example.org>","reason":"request"}`, http.StatusBadRequest},
		{"add with an unknown reason", http.MethodPost, admin, suppressionAdminToken, `{"address":"j@example.org","reason":"because"}`, http.StatusBadRequest},
		{"add with a free-text ticket", http.MethodPost, admin, suppressionAdminToken, `{"address":"j@example.org","reason":"other","ticket":"Jane Doe called"}`, http.StatusBadRequest},
		{"add with an unknown field", http.MethodPost, admin, suppressionAdminToken, `{"address":"j@example.org","reason":"other","note":"x"}`, http.StatusBadRequest},
		{"add without token", http.MethodPost, admin, "", `{"address":"j@example.org","reason":"other"}`, http.StatusUnauthorized},
	} {
		if code, body := adminDo(t, tt.method, tt.url, tt.token, tt.body); code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, code, body, tt.want)
		}
	}

	// Removing the entry lets the address be sent to again.
	if code, body := adminDo(t, http.MethodDelete, admin+"/"+list.Suppressions[0].AddressHash, suppressionAdminToken, ""); code != http.StatusNoContent {
		t.Fatalf("delete = %d %s", code, body)
	}
	if code, _ := adminDo(t, http.MethodGet, admin+"/"+list.Suppressions[0].AddressHash, suppressionAdminToken, ""); code != http.StatusNotFound {
		t.Errorf("get after delete = %d, want 404", code)
	}
	req = validRequest("acme", "dsn-4")
	req.To = dsnAddr
	h.waitStatus(t, "acme", h.send(t, req).GetMessageId(), deliveryv1.Status_STATUS_SENT)

	if strings.Contains(h.logs.String(), "canary") {
		t.Error("logs hold a recipient")
	}
	if m := httpGet(t, "http://"+h.cfg.HTTPAddr+"/metrics"); !strings.Contains(m, `email_sends_total{outcome="suppressed",tenant="acme"} 3`) ||
		!strings.Contains(m, `email_suppressions_total{reason="hard_bounce",source="dsn"} 1`) ||
		!strings.Contains(m, `email_suppressions_total{reason="request",source="admin"} 1`) {
		t.Errorf("metrics miss the suppressions:\n%s", grep(m, "suppress"))
	}
}
