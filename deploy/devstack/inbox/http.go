package inbox

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

// pages is parsed once and never modified.
var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"join":       strings.Join,
	"sortedKeys": func(m map[string][]string) []string { return slices.Sorted(maps.Keys(m)) },
}).ParseFS(templateFS, "templates/*.html"))

// Handler returns the inbox's web page and JSON API (see the package
// documentation for the routes). Links are relative, so the handler also
// works under http.StripPrefix.
func (in *Inbox) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", in.serveIndex)
	mux.HandleFunc("GET /messages/{id}", in.serveMessage)
	mux.HandleFunc("GET /messages/{id}/raw", in.serveRaw)
	mux.HandleFunc("GET /api/messages", in.serveList)
	mux.HandleFunc("DELETE /api/messages", in.serveDelete)
	mux.HandleFunc("GET /healthz", serveHealth)
	return withHeaders(mux)
}

// withHeaders keeps the pages out of caches and frames, and keeps message
// HTML inert: no scripts, forms or plugins, in the page or in the srcdoc
// iframe, which inherits this policy on top of its sandbox.
func withHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy",
			"default-src 'none'; style-src 'unsafe-inline'; img-src * data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}

func (in *Inbox) serveIndex(w http.ResponseWriter, r *http.Request) {
	render(w, "index.html", in.Messages())
}

func (in *Inbox) serveMessage(w http.ResponseWriter, r *http.Request) {
	m, ok := in.Message(r.PathValue("id"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	render(w, "message.html", m)
}

func (in *Inbox) serveRaw(w http.ResponseWriter, r *http.Request) {
	m, ok := in.Message(r.PathValue("id"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(m.Raw)
}

// listResponse is the body of GET /api/messages.
type listResponse struct {
	Messages []Message `json:"messages"`
}

func (in *Inbox) serveList(w http.ResponseWriter, r *http.Request) {
	msgs := in.Messages()
	if to := r.URL.Query().Get("to"); to != "" {
		msgs = slices.DeleteFunc(msgs, func(m Message) bool {
			return !slices.ContainsFunc(m.To, func(addr string) bool { return strings.EqualFold(addr, to) })
		})
	}
	body, err := json.Marshal(listResponse{Messages: msgs})
	if err != nil {
		http.Error(w, "encode messages", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

func (in *Inbox) serveDelete(w http.ResponseWriter, r *http.Request) {
	in.Reset()
	w.WriteHeader(http.StatusNoContent)
}

func serveHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok"))
}

// render executes a page into a buffer first, so that a template error
// becomes a clean 500 instead of half a page.
func render(w http.ResponseWriter, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "render page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}
