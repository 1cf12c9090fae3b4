package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"

	"github.com/carenotify/carenotify/services/ingest/internal/app"
)

// subscriptionStatus handles GET /status/subscriptions[?source=name]: the
// tracked subscription states as JSON. The admin token
// (INGEST_ADMIN_TOKEN) reads every source, or the one named; a source's
// own bearer token reads that source only.
func (s *Server) subscriptionStatus(w http.ResponseWriter, r *http.Request) {
	source := r.URL.Query().Get("source")
	authz := r.Header.Get("Authorization")
	switch {
	case s.isAdmin(authz):
	case source != "":
		if _, ok := s.auth.authenticate(source, authz); !ok {
			writeStatusError(w, http.StatusUnauthorized)
			return
		}
	default:
		writeStatusError(w, http.StatusUnauthorized)
		return
	}
	body, err := json.Marshal(struct {
		Subscriptions []app.SubscriptionState `json:"subscriptions"`
	}{s.app.SubscriptionStates(source)})
	if err != nil {
		writeStatusError(w, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

// isAdmin reports whether authorization carries the admin token.
func (s *Server) isAdmin(authorization string) bool {
	if s.adminDigest == nil {
		return false
	}
	token, ok := bearer(authorization)
	got := sha256.Sum256([]byte(token))
	return ok && subtle.ConstantTimeCompare(got[:], s.adminDigest[:]) == 1
}

func writeStatusError(w http.ResponseWriter, status int) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="carenotify-ingest"`)
	}
	http.Error(w, http.StatusText(status), status)
}
