package server

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/token"
)

// UnsubscribePath is the path prefix of one-click unsubscribe URLs:
// <EMAIL_UNSUBSCRIBE_BASE_URL>/u/<token>.
const UnsubscribePath = "/u/"

// Unsubscribe serves one-click unsubscribe (RFC 8058) on the email
// service's HTTP server: POST /u/{token} records the opt-out; GET
// /u/{token} only shows a page with a button that POSTs, so that link
// scanners and previews, which GET, unsubscribe nobody. The page needs no
// JavaScript. Responses carry no PHI: the token names a tenant and a
// message id, nothing about the recipient.
type Unsubscribe struct {
	keys     *token.Keys
	feedback *app.Feedback
	logger   *slog.Logger
}

// NewUnsubscribe returns the unsubscribe handler.
func NewUnsubscribe(keys *token.Keys, feedback *app.Feedback, logger *slog.Logger) *Unsubscribe {
	return &Unsubscribe{keys: keys, feedback: feedback, logger: logger}
}

// Register adds the unsubscribe routes to mux.
func (u *Unsubscribe) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+UnsubscribePath+"{token}", u.page)
	mux.HandleFunc("POST "+UnsubscribePath+"{token}", u.post)
}

// pages are the confirmation page (GET) and the result page (POST).
var pages = template.Must(template.New("pages").Parse(`{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{{.}}</title></head>{{end}}
{{define "confirm"}}{{template "head" "Unsubscribe"}}
<body><main>
<h1>Unsubscribe</h1>
<p>Stop receiving these emails?</p>
<form method="post">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button>
</form>
</main></body></html>
{{end}}
{{define "done"}}{{template "head" "Unsubscribed"}}
<body><main><h1>Unsubscribed</h1><p>You will no longer receive these emails.</p></main></body></html>
{{end}}`))

func (u *Unsubscribe) page(w http.ResponseWriter, r *http.Request) {
	if _, _, err := u.keys.ParseUnsubscribe(r.PathValue("token")); err != nil {
		u.invalid(w)
		return
	}
	u.render(w, "confirm")
}

func (u *Unsubscribe) post(w http.ResponseWriter, r *http.Request) {
	tenant, id, err := u.keys.ParseUnsubscribe(r.PathValue("token"))
	if err != nil {
		u.invalid(w)
		return
	}
	// The body is "List-Unsubscribe=One-Click" (RFC 8058 §3.2); it says
	// nothing the token does not, so it is read only to bound it.
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	_ = r.ParseForm()

	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	err = u.feedback.Unsubscribe(ctx, tenant, id)
	switch {
	case err == nil:
		u.render(w, "done")
	case errors.Is(err, app.ErrNotFound):
		u.invalid(w)
	case errors.Is(err, app.ErrBusy):
		u.unavailable(w)
	default:
		u.logger.Warn("unsubscribe failed", "messageId", id, "tenant", tenant, "err", err)
		u.unavailable(w)
	}
}

func (u *Unsubscribe) render(w http.ResponseWriter, name string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
	_ = pages.ExecuteTemplate(w, name, nil)
}

func (u *Unsubscribe) invalid(w http.ResponseWriter) {
	plain(w, http.StatusBadRequest, "This unsubscribe link is not valid.\n")
}

func (u *Unsubscribe) unavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "5")
	plain(w, http.StatusServiceUnavailable, "Please try again in a moment.\n")
}

func plain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg))
}
