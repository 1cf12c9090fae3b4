package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/mllp"
)

// Limits of GET /admin/dead-letters.
const (
	defaultDeadLetterLimit = 100
	maxDeadLetterLimit     = 1000
)

// replayAnswer is the body of POST /admin/dead-letters/{seq}/replay: what
// the original sender would have received now, and how many events the
// replay stored. It carries no PHI beyond what the original answer did
// (OperationOutcome diagnostics and HL7 ACKs are PHI-free by design).
type replayAnswer struct {
	Seq    uint64 `json:"seq"`
	Source string `json:"source"`
	Input  string `json:"input"`
	// Status is the HTTP status the FHIR sender would have got; 0 for HL7.
	Status int `json:"status,omitempty"`
	// Outcome is the FHIR answer body (OperationOutcome or Bundle).
	Outcome json.RawMessage `json:"outcome,omitempty"`
	// ACK is the HL7 acknowledgement, segments separated by \r.
	ACK string `json:"ack,omitempty"`
	// Events counts the events stored by the replay (duplicates included).
	Events int `json:"events"`
}

// listDeadLetters handles GET /admin/dead-letters?source=&limit=: seq,
// time, source, reason and input path of stored dead letters, oldest
// first; never their bodies. Admin token only.
func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	if !s.isAdmin(r.Header.Get("Authorization")) {
		writeStatusError(w, http.StatusUnauthorized)
		return
	}
	limit := defaultDeadLetterLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDeadLetterLimit {
			http.Error(w, "limit must be 1.."+strconv.Itoa(maxDeadLetterLimit), http.StatusBadRequest)
			return
		}
		limit = n
	}
	letters, err := s.app.DeadLetters(r.Context(), r.URL.Query().Get("source"), limit)
	if err != nil {
		s.deadLetterError(w, r, "list dead letters", err)
		return
	}
	writeAdminJSON(w, struct {
		DeadLetters []app.DeadLetterInfo `json:"deadLetters"`
	}{letters})
}

// replayDeadLetter handles POST /admin/dead-letters/{seq}/replay: the
// letter is opened and run again through the path it came in by, as its
// original source. Admin token only.
func (s *Server) replayDeadLetter(w http.ResponseWriter, r *http.Request) {
	if !s.isAdmin(r.Header.Get("Authorization")) {
		writeStatusError(w, http.StatusUnauthorized)
		return
	}
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		http.Error(w, "the sequence number must be a positive integer", http.StatusBadRequest)
		return
	}
	dl, err := s.app.DeadLetter(r.Context(), seq)
	if err != nil {
		s.deadLetterError(w, r, "read dead letter", err)
		return
	}
	src := app.Source{Name: dl.Source, Tenant: dl.Tenant}
	ans := replayAnswer{Seq: seq, Source: dl.Source, Input: dl.Input}
	switch dl.Input {
	case app.InputHL7:
		ack, n := mllp.Replay(r.Context(), s.app, src, dl.Body, s.logger)
		ans.ACK, ans.Events = string(ack), n
	case app.InputFHIRPush:
		rec := httptest.NewRecorder()
		res, err := s.app.IngestPush(r.Context(), src, dl.PushType, dl.Body)
		s.finishPush(r, rec, time.Time{}, src.Name, res, err)
		ans.Status, ans.Outcome, ans.Events = rec.Code, rec.Body.Bytes(), len(res.Events)
	case app.InputFHIRNotification:
		rec := httptest.NewRecorder()
		res, err := s.app.Ingest(r.Context(), src, dl.Body)
		s.finish(r, rec, time.Time{}, src.Name, res, err)
		ans.Status, ans.Outcome, ans.Events = rec.Code, rec.Body.Bytes(), len(res.Events)
	default:
		http.Error(w, "the dead letter has an unknown input path", http.StatusUnprocessableEntity)
		return
	}
	if len(ans.Outcome) == 0 || !json.Valid(ans.Outcome) {
		ans.Outcome = nil
	}
	s.logger.InfoContext(r.Context(), "dead letter replayed", "seq", seq, "source", dl.Source, "tenant", dl.Tenant,
		"input", dl.Input, "status", ans.Status, "events", ans.Events)
	writeAdminJSON(w, ans)
}

// deadLetterError maps a dead-letter read error to a status, once.
func (s *Server) deadLetterError(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, app.ErrDeadLetterNotFound):
		http.Error(w, "no dead letter with that sequence number", http.StatusNotFound)
	case errors.Is(err, app.ErrDeadLettersOff):
		http.Error(w, "dead letters are not available", http.StatusNotImplemented)
	default:
		// err names a stream, a sequence number or a key id, never content.
		s.logger.ErrorContext(r.Context(), what, "err", err)
		http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
	}
}

// writeAdminJSON renders v as plain JSON, never cached.
func writeAdminJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeStatusError(w, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}
