package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
	"github.com/carenotify/carenotify/services/ingest/internal/metrics"
)

// bodyReadTimeout bounds reading a request body, so a slow sender cannot
// hold a connection open.
const bodyReadTimeout = 60 * time.Second

// Server serves the FHIR endpoints: subscription notifications and REST
// push.
type Server struct {
	app     *app.App
	auth    *authenticator
	replay  ReplayCache
	limiter RateLimiter
	now     func() time.Time
	maxBody int64
	metrics *metrics.Metrics
	logger  *slog.Logger
	// adminDigest is the SHA-256 of the admin token; nil when none is set.
	adminDigest *[32]byte
}

// Options configure a Server.
type Options struct {
	// App processes notifications. Required.
	App *app.App
	// Sources may post notifications. Required.
	Sources config.Sources
	// MaxBodyBytes is the largest body accepted; larger bodies get 413.
	MaxBodyBytes int64
	// Metrics counts notifications. Required.
	Metrics *metrics.Metrics
	// Logger gets one line per request. Required.
	Logger *slog.Logger
	// AdminToken may read every source's subscription status, list dead
	// letters and replay them; optional.
	AdminToken config.Token
	// HMACSecrets are the secrets of each HMAC source (config.HMACSecrets).
	HMACSecrets map[string][][]byte
	// Replay remembers accepted HMAC signatures. Required when a source
	// uses HMAC.
	Replay ReplayCache
	// Now is the clock HMAC timestamps are checked against; time.Now when
	// nil.
	Now func() time.Time
	// Limiter holds each source's rate budget; required when a source has
	// a rate limit.
	Limiter RateLimiter
}

// RateLimiter is each source's request budget, shared by the replicas
// (ratelimit.Limiter).
type RateLimiter interface {
	// Allow takes one request of source; false and the wait when spent.
	Allow(ctx context.Context, tenant, source string, l config.Limits) (bool, time.Duration, error)
}

// ReplayCache remembers accepted HMAC signatures across replicas
// (replaycache.Cache).
type ReplayCache interface {
	// Claim records sig of source for ttl; false when it was there.
	Claim(ctx context.Context, tenant, source string, sig []byte, ttl time.Duration) (bool, error)
	// Release forgets sig: its request was not accepted.
	Release(ctx context.Context, tenant, source string, sig []byte) error
}

// New returns a Server.
func New(o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{app: o.App, auth: newAuthenticator(o.Sources, o.HMACSecrets), replay: o.Replay, limiter: o.Limiter, now: o.Now,
		maxBody: o.MaxBodyBytes, metrics: o.Metrics, logger: o.Logger}
	if o.AdminToken != "" {
		d := sha256.Sum256([]byte(string(o.AdminToken)))
		s.adminDigest = &d
	}
	return s
}

// Register adds the FHIR endpoints to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.Handle("POST /fhir/{source}/notifications", s.recoverPanics(s.releaseUnaccepted(http.HandlerFunc(s.notifications))))
	mux.Handle("POST /fhir/{source}", s.recoverPanics(s.releaseUnaccepted(http.HandlerFunc(s.push))))
	mux.Handle("POST /fhir/{source}/{type}", s.recoverPanics(s.releaseUnaccepted(http.HandlerFunc(s.push))))
	mux.Handle("GET /status/subscriptions", s.recoverPanics(http.HandlerFunc(s.subscriptionStatus)))
	mux.Handle("GET /admin/dead-letters", s.recoverPanics(http.HandlerFunc(s.listDeadLetters)))
	mux.Handle("POST /admin/dead-letters/{seq}/replay", s.recoverPanics(http.HandlerFunc(s.replayDeadLetter)))
	mux.Handle("POST /admin/map/{source}", s.recoverPanics(http.HandlerFunc(s.mapDryRun)))
}

// readBody authenticates the request, applies the source's rate limit,
// checks its media type and reads its body. On failure the error is ready
// for writeError.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, fhirVersions ...string) (app.Source, []byte, error) {
	name := r.PathValue("source")
	if cred, ok := s.auth.method(name); ok {
		switch cred.method {
		case config.AuthHMAC:
			return s.readSigned(w, r, cred, fhirVersions)
		case config.AuthMTLS:
			if err := authenticateCert(cred, r.TLS); err != nil {
				return cred.source, nil, err
			}
			if err := s.checkRate(w, r, cred); err != nil {
				return cred.source, nil, err
			}
			body, err := s.readChecked(w, r, cred, fhirVersions)
			return cred.source, body, err
		}
	}
	src, ok := s.auth.authenticate(name, r.Header.Get("Authorization"))
	if !ok {
		// The path segment is not echoed anywhere: it is whatever the caller sent.
		return app.Source{Name: "unknown"}, nil, errUnauthenticated
	}
	cred, _ := s.auth.method(src.Name)
	if err := s.checkRate(w, r, cred); err != nil {
		return src, nil, err
	}
	body, err := s.readChecked(w, r, cred, fhirVersions)
	return src, body, err
}

// readSigned reads the body of an HMAC source's request and checks its
// signature: timestamp first (before reading), then the MAC over the raw
// body, then the replay cache (fail closed: no cache, no request).
func (s *Server) readSigned(w http.ResponseWriter, r *http.Request, cred credential, fhirVersions []string) (app.Source, []byte, error) {
	src := cred.source
	sig, err := cred.hmac.check(r.Header.Get(SignatureHeader), s.now())
	if err != nil {
		return src, nil, err
	}
	body, err := s.readChecked(w, r, cred, fhirVersions)
	if err != nil {
		return src, nil, err
	}
	matched, err := cred.hmac.match(sig, body)
	if err != nil {
		return src, nil, err
	}
	// Before the claim: a throttled request may be resent as it is.
	if err := s.checkRate(w, r, cred); err != nil {
		return src, nil, err
	}
	if s.replay == nil {
		return src, nil, errReplayUnavailable
	}
	fresh, err := s.replay.Claim(r.Context(), src.Tenant, src.Name, matched, cred.hmac.replayTTL())
	switch {
	case err != nil:
		s.logger.ErrorContext(r.Context(), "replay cache unavailable", "source", src.Name, "err", err)
		return src, nil, errReplayUnavailable
	case !fresh:
		return src, nil, hmacError("hmac_replay", "this signature was accepted before: a replayed request is refused; sign each delivery afresh (a retry after a 5xx answer may reuse its signature)")
	}
	if c, ok := r.Context().Value(claimKey{}).(*claim); ok {
		*c = claim{src: src, sig: matched}
	}
	return src, body, nil
}

// errReplayUnavailable answers an HMAC request when the replay cache
// cannot be asked: refused, since a replay could not be told apart.
var errReplayUnavailable = &requestError{status: http.StatusServiceUnavailable, code: "transient", reason: "replay_cache_unavailable",
	diagnostics: "the receiver cannot check signatures for replay right now; retry later"}

// readChecked checks the media type and reads the body, up to the
// source's limit (max_body_bytes when lower than INGEST_MAX_BODY_BYTES).
func (s *Server) readChecked(w http.ResponseWriter, r *http.Request, cred credential, fhirVersions []string) ([]byte, error) {
	if err := checkContentType(r.Header.Get("Content-Type"), fhirVersions...); err != nil {
		return nil, err
	}
	limit := s.maxBody
	if l := cred.limits.MaxBodyBytes; l > 0 && l < limit {
		limit = l
	}
	// The shared HTTP server bounds only header reads; bound the body too.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &requestError{status: http.StatusRequestEntityTooLarge, code: "too-costly", reason: "body_too_large",
				diagnostics: fmt.Sprintf("the body is larger than the %d bytes this endpoint accepts from this source", limit)}
		}
		return nil, &requestError{status: http.StatusBadRequest, code: "incomplete", reason: "body_unreadable",
			diagnostics: "the body could not be read completely"}
	}
	return body, nil
}

// notifications handles POST /fhir/{source}/notifications.
func (s *Server) notifications(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	src, body, err := s.readBody(w, r, "4.0", "4.3", "5.0")
	if err != nil {
		s.finish(r, w, start, src.Name, app.Result{}, err)
		return
	}
	res, err := s.app.Ingest(r.Context(), src, body)
	s.finish(r, w, start, src.Name, res, err)
}

// finish writes the answer, counts it and logs one line about it.
func (s *Server) finish(r *http.Request, w http.ResponseWriter, start time.Time, source string, res app.Result, err error) {
	typ := string(res.Type)
	if typ == "" {
		typ = "unknown"
	}
	var (
		status          = http.StatusOK
		outcome, reason string
	)
	if err != nil {
		status, outcome, reason = writeError(w, err)
	} else {
		outcome = writeSuccess(w, res)
	}
	s.metrics.Notification(source, typ, outcome)
	s.metrics.Handled(inputCounts(source, app.InputFHIRNotification, typ, res.Events, res.SameVersion, reason, start))

	ids := make([]string, 0, len(res.Events))
	for _, e := range res.Events {
		ids = append(ids, e.ID)
	}
	attrs := []any{"source", source, "type", typ, "status", status, "outcome", outcome,
		"events", len(res.Events), "eventIds", ids, "unmapped", res.Unmapped, "unchanged", res.Unchanged}
	if res.Payload != "" {
		attrs = append(attrs, "payload", string(res.Payload))
	}
	attrs, level := outcomeAttrs(attrs, err, reason, status)
	s.logger.Log(r.Context(), level, "notification handled", attrs...)
}

// inputCounts describes an answered input for metrics.Handled; a zero
// start (a dead-letter replay) records no latency.
func inputCounts(source, input, typ string, events []app.PublishedEvent, sameVersion int, reason string, start time.Time) metrics.Input {
	in := metrics.Input{Source: source, Input: input, Type: typ, SameVersion: sameVersion, Rejected: reason}
	if !start.IsZero() {
		in.Elapsed = time.Since(start)
	}
	for _, e := range events {
		if e.Duplicate {
			in.AlreadyStored++
		} else {
			in.Published++
		}
	}
	return in
}

// outcomeAttrs adds what a failed request's log line says (reason, the
// failing FHIRPath expression, and the error only for 5xx, whose errors
// come from infrastructure, not input) and picks the line's level.
func outcomeAttrs(attrs []any, err error, reason string, status int) ([]any, slog.Level) {
	if err == nil {
		return attrs, slog.LevelInfo
	}
	attrs = append(attrs, "reason", reason)
	var ae *app.Error
	if errors.As(err, &ae) && ae.Expression != "" {
		attrs = append(attrs, "expression", ae.Expression)
	}
	if status >= 500 {
		return append(attrs, "err", err), slog.LevelError
	}
	return attrs, slog.LevelWarn
}

// recoverPanics answers 500 instead of dropping the connection when a handler
// panics, and logs the stack only: the panic value may hold input.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger.ErrorContext(r.Context(), "panic in http handler", "path", r.URL.Path, "stack", string(debug.Stack()))
				writeError(w, errors.New("panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// checkContentType accepts application/fhir+json and application/json,
// with an optional charset (UTF-8 only) and an optional fhirVersion
// parameter, one of fhirVersions (major.minor).
func checkContentType(ct string, fhirVersions ...string) error {
	unsupported := func(diag string) error {
		return &requestError{status: http.StatusUnsupportedMediaType, code: "not-supported", reason: "unsupported_media_type", diagnostics: diag}
	}
	const want = "send Content-Type application/fhir+json (or application/json)"
	if ct == "" {
		return unsupported("no Content-Type; " + want)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/fhir+json" && mt != "application/json") {
		return unsupported("unsupported Content-Type; " + want)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return unsupported("unsupported charset; FHIR JSON is UTF-8")
	}
	if v, ok := params["fhirversion"]; ok && !slices.ContainsFunc(fhirVersions, func(want string) bool {
		return v == want || strings.HasPrefix(v, want+".")
	}) {
		return unsupported("unsupported fhirVersion; this endpoint reads fhirVersion " + strings.Join(fhirVersions, ", "))
	}
	return nil
}
