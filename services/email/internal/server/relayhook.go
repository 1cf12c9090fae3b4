package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/metrics"
)

// RelayHookPath is the prefix of relay webhooks: /webhooks/relay/{provider}.
const RelayHookPath = "/webhooks/relay/"

// SendGrid Event Webhook signature headers (signed event webhook: ECDSA
// P-256 over SHA-256 of timestamp followed by the raw body, DER, base64).
const (
	HeaderSendGridSignature = "X-Twilio-Email-Event-Webhook-Signature"
	HeaderSendGridTimestamp = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// SendGridMaxAge bounds how old a signed timestamp may be.
const SendGridMaxAge = time.Hour

// maxHookBody bounds one webhook request (SendGrid batches events).
const maxHookBody = 4 << 20

// ParseSendGridKey parses the verification key SendGrid shows for a signed
// event webhook: base64 of the DER (PKIX) ECDSA public key, optionally
// wrapped in a PEM block.
func ParseSendGridKey(s string) (*ecdsa.PublicKey, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "-----BEGIN PUBLIC KEY-----")
	s = strings.TrimSuffix(s, "-----END PUBLIC KEY-----")
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, errors.New("sendgrid key: not base64")
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, errors.New("sendgrid key: not a PKIX public key")
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("sendgrid key: not an ECDSA key")
	}
	return ek, nil
}

// SendGridHook receives SendGrid's Event Webhook (POST
// /webhooks/relay/sendgrid): a JSON array of events, signed. bounce events
// of type "bounce" are hard bounces, spamreport events complaints; each is
// mapped to our message by its smtp-id (our Message-ID, <message
// id@domain>) and recorded as the bounce listener records DSNs and ARF
// reports (DELIVERY event, record, suppression). Other events (processed,
// delivered, deferred, blocked, dropped, open, click, ...) are counted and
// ignored. Nothing of an event is logged but its id, type and status code:
// events carry the recipient's address.
type SendGridHook struct {
	key      *ecdsa.PublicKey
	feedback *app.Feedback
	metrics  *metrics.Metrics
	logger   *slog.Logger
	now      func() time.Time
}

// NewSendGridHook returns the handler; key verifies signatures.
func NewSendGridHook(key *ecdsa.PublicKey, feedback *app.Feedback, m *metrics.Metrics, logger *slog.Logger) *SendGridHook {
	return &SendGridHook{key: key, feedback: feedback, metrics: m, logger: logger, now: time.Now}
}

// Register adds the route to mux.
func (h *SendGridHook) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST "+RelayHookPath+"sendgrid", h.serve)
}

// sendGridEvent is the part of an event this service reads.
type sendGridEvent struct {
	Event   string `json:"event"`
	Type    string `json:"type"`
	Status  string `json:"status"`
	SMTPID  string `json:"smtp-id"`
	EventID string `json:"sg_event_id"`
}

func (h *SendGridHook) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHookBody))
	if err != nil {
		plain(w, http.StatusRequestEntityTooLarge, "body too large\n")
		return
	}
	if !h.verify(r.Header.Get(HeaderSendGridSignature), r.Header.Get(HeaderSendGridTimestamp), body) {
		h.metrics.Feedback("relay_hook", app.FeedbackRefused)
		plain(w, http.StatusForbidden, "signature does not verify\n")
		return
	}
	var events []sendGridEvent
	if err := json.Unmarshal(body, &events); err != nil {
		// The decoder's error may quote the body (addresses).
		plain(w, http.StatusBadRequest, "body is not a JSON array of events\n")
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	defer cancel()
	for _, ev := range events {
		if err := h.event(ctx, ev); err != nil {
			h.logger.Warn("relay webhook event not recorded; asking for a retry", "provider", "sendgrid", "eventId", ev.EventID, "err", err)
			w.Header().Set("Retry-After", "30")
			plain(w, http.StatusServiceUnavailable, "try again later\n")
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// verify checks the signature of timestamp+body and the timestamp's age.
func (h *SendGridHook) verify(sig, ts string, body []byte) bool {
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	if age := h.now().Sub(time.Unix(secs, 0)); age > SendGridMaxAge || age < -5*time.Minute {
		return false
	}
	der, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	sum := sha256.Sum256(append([]byte(ts), body...))
	return ecdsa.VerifyASN1(h.key, sum[:], der)
}

// event records one event; only ErrUnavailable and ErrBusy are errors.
func (h *SendGridHook) event(ctx context.Context, ev sendGridEvent) error {
	var kind string
	switch {
	case ev.Event == "bounce" && (ev.Type == "bounce" || ev.Type == ""):
		kind = "bounce"
	case ev.Event == "spamreport":
		kind = "complaint"
	default:
		h.metrics.Feedback("relay_hook_"+knownEvent(ev.Event), "ignored")
		return nil
	}
	id, ok := messageIDOf(ev.SMTPID)
	log := h.logger.With("provider", "sendgrid", "eventId", boundedToken(ev.EventID), "kind", kind)
	if !ok {
		h.metrics.Feedback("relay_hook", app.FeedbackUnknown)
		log.Info("relay webhook event without one of our Message-IDs; dropped")
		return nil
	}
	rep := app.Report{Source: app.SourceRelayHook, ID: boundedToken(ev.EventID)}
	var err error
	if kind == "bounce" {
		rep.Status = statusCode(ev.Status)
		_, err = h.feedback.Bounce(ctx, id, rep)
	} else {
		rep.Status = "abuse"
		_, err = h.feedback.Complaint(ctx, id, rep)
	}
	log = log.With("messageId", id, "status", rep.Status)
	switch {
	case errors.Is(err, app.ErrNotFound):
		log.Info("relay webhook event for a message without record; dropped")
		return nil
	case err != nil:
		return err
	}
	log.Info("relay webhook event recorded")
	return nil
}

// messageIDOf returns the message id in a Message-ID "<id@domain>".
func messageIDOf(smtpID string) (string, bool) {
	v := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(smtpID), "<"), ">")
	local, _, ok := strings.Cut(v, "@")
	if !ok {
		return "", false
	}
	u, err := uuid.Parse(local)
	if err != nil || u.String() != strings.ToLower(local) {
		return "", false
	}
	return u.String(), true
}

// statusCode returns v when it is an RFC 3463 code ("5.1.1"), "" otherwise.
func statusCode(v string) string {
	parts := strings.Split(strings.TrimSpace(v), ".")
	if len(parts) != 3 || (parts[0] != "4" && parts[0] != "5") {
		return ""
	}
	for _, p := range parts[1:] {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return ""
		}
	}
	return strings.TrimSpace(v)
}

// boundedToken returns v when it is a short token of letters, digits and
// "-_.=+/", "" otherwise: event ids go in logs and suppression entries.
func boundedToken(v string) string {
	if len(v) == 0 || len(v) > 128 {
		return ""
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.=+/", c) >= 0) {
			return ""
		}
	}
	return v
}

// knownEvent returns ev when it is one of SendGrid's event names, "other"
// otherwise, so that metric labels stay a fixed set.
func knownEvent(ev string) string {
	switch ev {
	case "processed", "dropped", "delivered", "deferred", "bounce", "open", "click", "unsubscribe", "group_unsubscribe", "group_resubscribe":
		return ev
	}
	return "other"
}
