package server

import (
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/services/sms/internal/app"
	"github.com/carenotify/carenotify/services/sms/internal/metrics"
	"github.com/carenotify/carenotify/services/sms/internal/twilio"
)

// Webhook paths, under SMS_PUBLIC_URL.
const (
	StatusPath  = "/twilio/status"
	InboundPath = "/twilio/inbound"
)

// maxWebhookBytes bounds a webhook body; Twilio's are a few hundred bytes.
const maxWebhookBytes = 64 << 10

// WebhooksOptions configure Webhooks.
type WebhooksOptions struct {
	// PublicURL is the base URL Twilio calls (SMS_PUBLIC_URL): signatures
	// are computed over PublicURL + path + query.
	PublicURL string
	// AccountSID and AuthToken are the Twilio account's.
	AccountSID, AuthToken string
	Receipts              *app.Receipts
	Keywords              *app.Keywords
	Metrics               *metrics.Metrics
	Logger                *slog.Logger
}

// Webhooks serves Twilio's status callbacks and inbound messages.
type Webhooks struct {
	o    WebhooksOptions
	base string
}

// NewWebhooks returns Webhooks.
func NewWebhooks(o WebhooksOptions) *Webhooks {
	return &Webhooks{o: o, base: strings.TrimRight(o.PublicURL, "/")}
}

// StatusCallback returns the receipt URL of a message: it names tenant
// and message id (no PHI), so the receipt needs no lookup by SID.
func StatusCallback(publicURL, tenant, id string) string {
	return strings.TrimRight(publicURL, "/") + StatusPath + "?" + url.Values{"tenant": {tenant}, "message": {id}}.Encode()
}

// Register adds the webhook routes to mux.
func (h *Webhooks) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST "+StatusPath, h.status)
	mux.HandleFunc("POST "+InboundPath, h.inbound)
}

// inbound handles a text a patient sent to one of our numbers: POST
// /twilio/inbound with MessageSid, From, To and Body. It answers TwiML:
// a <Message> replying to a keyword, or an empty <Response/>.
func (h *Webhooks) inbound(w http.ResponseWriter, r *http.Request) {
	form, ok := h.verify(w, r, "inbound")
	if !ok {
		return
	}
	kw, reply, err := h.o.Keywords.Handle(r.Context(), app.Inbound{
		ProviderID: form.Get("MessageSid"), From: form.Get("From"), To: form.Get("To"), Body: form.Get("Body"),
	})
	if err != nil {
		h.o.Metrics.Callback("inbound", "unavailable")
		h.o.Logger.Warn("inbound text not recorded; asking for a retry", "providerId", form.Get("MessageSid"), "err", err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	h.o.Metrics.Callback("inbound", string(kw))
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	var b strings.Builder
	b.WriteString(xml.Header)
	if reply == "" {
		b.WriteString("<Response/>")
	} else {
		b.WriteString("<Response><Message>")
		_ = xml.EscapeText(&b, []byte(reply))
		b.WriteString("</Message></Response>")
	}
	_, _ = io.WriteString(w, b.String())
}

// verify parses the form of r and checks its X-Twilio-Signature against
// the URL Twilio called and the account. It answers 400 or 403 itself and
// returns false when the request must go no further.
func (h *Webhooks) verify(w http.ResponseWriter, r *http.Request, kind string) (url.Values, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxWebhookBytes)
	if err := r.ParseForm(); err != nil {
		h.o.Metrics.Callback(kind, "malformed")
		http.Error(w, "malformed form body", http.StatusBadRequest)
		return nil, false
	}
	full := h.base + r.URL.RequestURI()
	if !twilio.Verify(h.o.AuthToken, full, r.PostForm, r.Header.Get("X-Twilio-Signature")) ||
		r.PostForm.Get("AccountSid") != h.o.AccountSID {
		h.o.Metrics.Callback(kind, "bad_signature")
		h.o.Logger.Warn("twilio webhook refused: bad or missing signature", "kind", kind)
		http.Error(w, "invalid X-Twilio-Signature", http.StatusForbidden)
		return nil, false
	}
	return r.PostForm, true
}

// status handles a delivery receipt: POST /twilio/status?tenant=&message=
// with MessageSid, MessageStatus and, for failures, ErrorCode.
func (h *Webhooks) status(w http.ResponseWriter, r *http.Request) {
	form, ok := h.verify(w, r, "status")
	if !ok {
		return
	}
	q := r.URL.Query()
	tenant, id := q.Get("tenant"), q.Get("message")
	if _, err := uuid.Parse(id); err != nil || !bus.ValidToken(tenant) {
		h.o.Metrics.Callback("status", "malformed")
		http.Error(w, "status callback URL names no message", http.StatusBadRequest)
		return
	}
	code, _ := strconv.Atoi(form.Get("ErrorCode"))
	outcome, err := h.o.Receipts.Apply(r.Context(), app.Receipt{
		Tenant: tenant, MessageID: id, ProviderID: form.Get("MessageSid"),
		ProviderStatus: form.Get("MessageStatus"), ErrorCode: code,
	})
	switch {
	case errors.Is(err, app.ErrBusy), errors.Is(err, app.ErrUnavailable):
		h.o.Metrics.Callback("status", "unavailable")
		h.o.Logger.Warn("status callback not recorded; asking for a retry", "messageId", id, "tenant", tenant, "err", err)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	case err != nil:
		h.o.Metrics.Callback("status", "unavailable")
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	h.o.Metrics.Callback("status", outcome)
	w.WriteHeader(http.StatusNoContent)
}
