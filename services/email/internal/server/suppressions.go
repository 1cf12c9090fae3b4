package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/records"
)

// SuppressionsPath is the prefix of the suppression admin API.
const SuppressionsPath = "/admin/suppressions/"

// Suppressions serves the suppression admin API on the HTTP server. Every
// route needs "Authorization: Bearer <EMAIL_ADMIN_TOKEN>"; without a
// configured token every request is 401. Addresses never appear in a URL
// or a response: entries are named by their address hash, and a lookup by
// address takes it in a POST body.
type Suppressions struct {
	admin  *app.SuppressionAdmin
	token  [sha256.Size]byte
	hasTok bool
	logger *slog.Logger
}

// NewSuppressions returns the admin handler; token is EMAIL_ADMIN_TOKEN.
func NewSuppressions(admin *app.SuppressionAdmin, token string, logger *slog.Logger) *Suppressions {
	return &Suppressions{admin: admin, token: sha256.Sum256([]byte(token)), hasTok: token != "", logger: logger}
}

// Register adds the routes to mux.
func (s *Suppressions) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+SuppressionsPath+"{tenant}", s.auth(s.list))
	mux.HandleFunc("POST "+SuppressionsPath+"{tenant}", s.auth(s.add))
	mux.HandleFunc("GET "+SuppressionsPath+"{tenant}/{hash}", s.auth(s.get))
	mux.HandleFunc("DELETE "+SuppressionsPath+"{tenant}/{hash}", s.auth(s.remove))
	mux.HandleFunc("POST "+SuppressionsPath+"{tenant}/lookup", s.auth(s.lookup))
}

// entryJSON is one entry as the API shows it.
type entryJSON struct {
	AddressHash string    `json:"address_hash"`
	Reason      string    `json:"reason"`
	Source      string    `json:"source"`
	MessageID   string    `json:"message_id"`
	ReportID    string    `json:"report_id,omitempty"`
	Status      string    `json:"status,omitempty"`
	At          time.Time `json:"at"`
}

func toJSON(e app.Suppression) entryJSON {
	return entryJSON{
		AddressHash: e.AddressHash, Reason: string(e.Reason), Source: e.Source, MessageID: e.MessageID,
		ReportID: e.ReportID, Status: e.Status, At: e.At.UTC(),
	}
}

func (s *Suppressions) auth(next func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearerToken(r.Header.Get("Authorization"))
		got := sha256.Sum256([]byte(tok))
		if !ok || !s.hasTok || subtle.ConstantTimeCompare(got[:], s.token[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="email-admin"`)
			adminError(w, http.StatusUnauthorized, "unauthenticated", "", "a valid admin bearer token (EMAIL_ADMIN_TOKEN) is required")
			return
		}
		tenant := r.PathValue("tenant")
		if !bus.ValidToken(tenant) {
			adminError(w, http.StatusBadRequest, "invalid_argument", "tenant", "must be 1-64 letters, digits, '_' or '-'")
			return
		}
		next(w, r, tenant)
	}
}

func (s *Suppressions) list(w http.ResponseWriter, r *http.Request, tenant string) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > app.MaxListLimit {
			adminError(w, http.StatusBadRequest, "invalid_argument", "limit", "must be 1-"+strconv.Itoa(app.MaxListLimit))
			return
		}
		limit = n
	}
	cursor := r.URL.Query().Get("cursor")
	if cursor != "" && !records.ValidCursor(cursor) {
		adminError(w, http.StatusBadRequest, "invalid_argument", "cursor", "must be a next value returned by this endpoint")
		return
	}
	es, next, err := s.admin.List(r.Context(), tenant, cursor, limit)
	if err != nil {
		s.unavailable(w, "list", err)
		return
	}
	out := struct {
		Suppressions []entryJSON `json:"suppressions"`
		Next         string      `json:"next"`
	}{Suppressions: []entryJSON{}, Next: next}
	for _, e := range es {
		out.Suppressions = append(out.Suppressions, toJSON(e))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Suppressions) get(w http.ResponseWriter, r *http.Request, tenant string) {
	e, err := s.admin.Get(r.Context(), tenant, r.PathValue("hash"))
	s.answer(w, "get", e, err)
}

func (s *Suppressions) remove(w http.ResponseWriter, r *http.Request, tenant string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	err := s.admin.Remove(ctx, tenant, r.PathValue("hash"))
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, app.ErrNotFound):
		adminError(w, http.StatusNotFound, "not_found", "", "no such suppression")
	default:
		s.unavailable(w, "remove", err)
	}
}

// ticketRule says what an operator's ticket reference may be: short and
// plain, so that no note with PHI in it lands on the list.
const ticketRule = "must be 1-64 letters, digits or . _ - : / #"

func validTicket(t string) bool {
	if len(t) > 64 {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-:/#", c)) {
			return false
		}
	}
	return true
}

// add puts an address on the list by hand: body {"address", "reason",
// "ticket"}. 201 with the new entry, 200 with the entry already there
// (its first evidence stays).
func (s *Suppressions) add(w http.ResponseWriter, r *http.Request, tenant string) {
	var body struct {
		Address string `json:"address"`
		Reason  string `json:"reason"`
		Ticket  string `json:"ticket"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		// The decoder's error may quote the body.
		adminError(w, http.StatusBadRequest, "invalid_argument", "", `the body must be {"address", "reason", "ticket"}`)
		return
	}
	reason, ok := app.ParseSuppressionReason(body.Reason)
	switch {
	case !app.ValidAddress(body.Address):
		adminError(w, http.StatusBadRequest, "invalid_argument", "address", "must be one bare address (jane@example.org)")
		return
	case !ok:
		adminError(w, http.StatusBadRequest, "invalid_argument", "reason", "must be request, other, hard_bounce or complaint")
		return
	case !validTicket(body.Ticket):
		adminError(w, http.StatusBadRequest, "invalid_argument", "ticket", ticketRule)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	e, added, err := s.admin.Add(ctx, tenant, body.Address, reason, body.Ticket)
	switch {
	case err != nil:
		s.unavailable(w, "add", err)
	case added:
		writeJSON(w, http.StatusCreated, toJSON(e))
	default:
		writeJSON(w, http.StatusOK, toJSON(e))
	}
}

func (s *Suppressions) lookup(w http.ResponseWriter, r *http.Request, tenant string) {
	var body struct {
		Address string `json:"address"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || !strings.Contains(body.Address, "@") {
		// The decoder's error may quote the body.
		adminError(w, http.StatusBadRequest, "invalid_argument", "address", `the body must be {"address": "<recipient address>"}`)
		return
	}
	hash := s.admin.Hash(tenant, body.Address)
	e, err := s.admin.Get(r.Context(), tenant, hash)
	if errors.Is(err, app.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, map[string]any{
			"error":        map[string]string{"code": "not_found", "message": "the address is not suppressed"},
			"address_hash": hash,
		})
		return
	}
	s.answer(w, "lookup", e, err)
}

func (s *Suppressions) answer(w http.ResponseWriter, op string, e app.Suppression, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, toJSON(e))
	case errors.Is(err, app.ErrNotFound):
		adminError(w, http.StatusNotFound, "not_found", "", "no such suppression")
	default:
		s.unavailable(w, op, err)
	}
}

func (s *Suppressions) unavailable(w http.ResponseWriter, op string, err error) {
	s.logger.Warn("suppression admin failed", "op", op, "err", err)
	w.Header().Set("Retry-After", "5")
	adminError(w, http.StatusServiceUnavailable, "unavailable", "", "the suppression list is unavailable; retry")
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header; the scheme is case-insensitive (RFC 9110 §11.1).
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
