package server

import (
	"context"
	"net/http"

	"github.com/carenotify/carenotify/services/ingest/internal/app"
)

// claim is an HMAC signature a request claimed in the replay cache.
type claim struct {
	src app.Source
	sig []byte
}

type claimKey struct{}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// releaseUnaccepted releases the request's claimed HMAC signature when
// the answer is not a success below 500 (nothing was acknowledged), so
// that the sender's retry of the same signed request is not refused as a
// replay.
func (s *Server) releaseUnaccepted(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &claim{}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if c.sig == nil || (sw.status != 0 && sw.status < 500) {
				return
			}
			if err := s.replay.Release(context.WithoutCancel(r.Context()), c.src.Tenant, c.src.Name, c.sig); err != nil {
				s.logger.WarnContext(r.Context(), "release hmac signature", "source", c.src.Name, "err", err)
			}
		}()
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), claimKey{}, c)))
	})
}
