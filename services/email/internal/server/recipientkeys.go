package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/recipientkeys"
)

// RecipientKeysPath is the admin path that sets recipients' keys.
const RecipientKeysPath = "/admin/recipient-keys"

// maxKeyRequestBytes bounds an admin request body (two keys and an
// address).
const maxKeyRequestBytes = 256 << 10

// RecipientKeys is the admin API for recipients' S/MIME certificates and
// OpenPGP keys on EMAIL_HTTP_ADDR, behind a bearer token
// (EMAIL_ADMIN_TOKEN):
//
//	PUT  /admin/recipient-keys         {tenant, address, smime_certificate, openpgp_public_key}
//	POST /admin/recipient-keys/lookup  {tenant, address}
//	POST /admin/recipient-keys/delete  {tenant, address}
//
// The address travels in the body, never in the URL (URLs are logged).
// Answers say what is on record (kinds, certificate expiry and
// fingerprints), never the address.
type RecipientKeys struct {
	reg    app.KeyRegistry
	digest *[32]byte // of the admin token; nil refuses every request
	logger *slog.Logger
	now    func() time.Time
}

// NewRecipientKeys returns the handler; with an empty token every request
// is refused (401).
func NewRecipientKeys(reg app.KeyRegistry, token string, logger *slog.Logger) *RecipientKeys {
	h := &RecipientKeys{reg: reg, logger: logger, now: time.Now}
	if token != "" {
		d := sha256.Sum256([]byte(token))
		h.digest = &d
	}
	return h
}

// Register adds the routes to mux.
func (h *RecipientKeys) Register(mux *http.ServeMux) {
	mux.HandleFunc("PUT "+RecipientKeysPath, h.put)
	mux.HandleFunc("POST "+RecipientKeysPath+"/lookup", h.lookup)
	mux.HandleFunc("POST "+RecipientKeysPath+"/delete", h.delete)
}

// keyRequest is the body of every route; the keys only for PUT.
type keyRequest struct {
	Tenant  string `json:"tenant"`
	Address string `json:"address"`
	// SMIMECertificate is a PEM certificate.
	SMIMECertificate string `json:"smime_certificate"`
	// OpenPGPPublicKey is an ASCII-armored public key.
	OpenPGPPublicKey string `json:"openpgp_public_key"`
}

// keyAnswer says what is on record; nothing of it names the recipient
// beyond what the caller sent.
type keyAnswer struct {
	Tenant    string         `json:"tenant"`
	SMIME     *smimeAnswer   `json:"smime,omitempty"`
	OpenPGP   *openPGPAnswer `json:"openpgp,omitempty"`
	UpdatedAt time.Time      `json:"updated_at"`
}

type smimeAnswer struct {
	// SHA256 is the certificate's fingerprint (hex).
	SHA256   string    `json:"sha256"`
	NotAfter time.Time `json:"not_after"`
}

type openPGPAnswer struct {
	// Fingerprint is the primary key's fingerprint (hex).
	Fingerprint string `json:"fingerprint"`
}

func (h *RecipientKeys) put(w http.ResponseWriter, r *http.Request) {
	req, ok := h.read(w, r)
	if !ok {
		return
	}
	rec, err := recipientkeys.NewRecord(req.Address, []byte(req.SMIMECertificate), []byte(req.OpenPGPPublicKey), h.now())
	var fe *recipientkeys.FieldError
	if errors.As(err, &fe) {
		adminError(w, http.StatusBadRequest, "invalid_argument", fe.Field, fe.Description)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := h.reg.Put(ctx, req.Tenant, req.Address, rec); err != nil {
		h.unavailable(w, "put", req.Tenant, err)
		return
	}
	h.logger.Info("recipient keys set", "tenant", req.Tenant, "smime", len(rec.SMIME) > 0, "pgp", len(rec.PGP) > 0)
	writeJSON(w, http.StatusOK, answer(req.Tenant, rec))
}

func (h *RecipientKeys) lookup(w http.ResponseWriter, r *http.Request) {
	req, ok := h.read(w, r)
	if !ok || !h.address(w, req) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	rec, err := h.reg.Get(ctx, req.Tenant, req.Address)
	switch {
	case errors.Is(err, app.ErrNoKeyRecord):
		adminError(w, http.StatusNotFound, "not_found", "", "no key is on record for this address")
	case err != nil:
		h.unavailable(w, "lookup", req.Tenant, err)
	default:
		writeJSON(w, http.StatusOK, answer(req.Tenant, rec))
	}
}

func (h *RecipientKeys) delete(w http.ResponseWriter, r *http.Request) {
	req, ok := h.read(w, r)
	if !ok || !h.address(w, req) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	found, err := h.reg.Delete(ctx, req.Tenant, req.Address)
	switch {
	case err != nil:
		h.unavailable(w, "delete", req.Tenant, err)
	case !found:
		adminError(w, http.StatusNotFound, "not_found", "", "no key is on record for this address")
	default:
		h.logger.Info("recipient keys deleted", "tenant", req.Tenant)
		writeJSON(w, http.StatusOK, map[string]any{"tenant": req.Tenant, "deleted": true})
	}
}

// read authenticates r and decodes its body; on failure it has answered.
func (h *RecipientKeys) read(w http.ResponseWriter, r *http.Request) (keyRequest, bool) {
	var req keyRequest
	tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if d := sha256.Sum256([]byte(tok)); h.digest == nil || !found || subtle.ConstantTimeCompare(d[:], h.digest[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="carenotify-email-admin"`)
		adminError(w, http.StatusUnauthorized, "unauthenticated", "", "a valid admin bearer token (EMAIL_ADMIN_TOKEN) is required")
		return req, false
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		adminError(w, http.StatusUnsupportedMediaType, "invalid_argument", "", "the body must be application/json")
		return req, false
	}
	d := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxKeyRequestBytes))
	d.DisallowUnknownFields()
	if err := d.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			adminError(w, http.StatusRequestEntityTooLarge, "invalid_argument", "", "the body is larger than 256 KiB")
			return req, false
		}
		// The decoder's message may quote the body (an address).
		adminError(w, http.StatusBadRequest, "invalid_argument", "", "the body is not a JSON object with tenant, address, smime_certificate, openpgp_public_key")
		return req, false
	}
	if !bus.ValidToken(req.Tenant) {
		adminError(w, http.StatusBadRequest, "invalid_argument", "tenant", "must be 1-64 letters, digits, '_' or '-'")
		return req, false
	}
	return req, true
}

// address checks req's address for lookup and delete.
func (h *RecipientKeys) address(w http.ResponseWriter, req keyRequest) bool {
	if _, ok := app.NormalizeAddress(req.Address); !ok {
		adminError(w, http.StatusBadRequest, "invalid_argument", "address", "must be one bare address (RFC 5322 addr-spec, no display name)")
		return false
	}
	return true
}

func (h *RecipientKeys) unavailable(w http.ResponseWriter, op, tenant string, err error) {
	h.logger.Warn("recipient keys "+op+" failed", "tenant", tenant, "err", err)
	w.Header().Set("Retry-After", "5")
	adminError(w, http.StatusServiceUnavailable, "unavailable", "", "the key store is unavailable; retry")
}

func answer(tenant string, rec app.KeyRecord) keyAnswer {
	a := keyAnswer{Tenant: tenant, UpdatedAt: rec.UpdatedAt}
	if len(rec.SMIME) > 0 {
		a.SMIME = &smimeAnswer{}
		if info, err := recipientkeys.DescribeSMIME(rec.SMIME); err == nil {
			a.SMIME.SHA256, a.SMIME.NotAfter = info.SHA256, info.NotAfter
		}
	}
	if len(rec.PGP) > 0 {
		a.OpenPGP = &openPGPAnswer{}
		if fp, err := recipientkeys.DescribePGP(rec.PGP); err == nil {
			a.OpenPGP.Fingerprint = fp
		}
	}
	return a
}

// adminError writes {"error": {"code", "field", "message"}}; message
// never quotes the request.
func adminError(w http.ResponseWriter, status int, code, field, msg string) {
	body := map[string]string{"code": code, "message": msg}
	if field != "" {
		body["field"] = field
	}
	writeJSON(w, status, map[string]any{"error": body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
