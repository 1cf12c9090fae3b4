package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify"
)

// resourceTypeRE matches a FHIR resource type name in the URL.
var resourceTypeRE = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)

// push handles POST /fhir/{source} (a Bundle) and POST
// /fhir/{source}/{type} (a single resource).
func (s *Server) push(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	src, body, err := s.readBody(w, r, "4.0")
	if err != nil {
		s.finishPush(r, w, start, src.Name, app.PushResult{}, err)
		return
	}
	pathType := r.PathValue("type")
	if pathType != "" && !resourceTypeRE.MatchString(pathType) {
		s.finishPush(r, w, start, src.Name, app.PushResult{}, &requestError{status: http.StatusNotFound, code: "not-found",
			reason: "unknown_path", diagnostics: "no such endpoint: post a Bundle to [base], a resource to [base]/<resource type>, notifications to [base]/notifications"})
		return
	}
	res, err := s.app.IngestPush(r.Context(), src, pathType, body)
	s.finishPush(r, w, start, src.Name, res, err)
}

// bundleResponse is a transaction-response or batch-response Bundle.
type bundleResponse struct {
	ResourceType string          `json:"resourceType"`
	Type         string          `json:"type"`
	Entry        []responseEntry `json:"entry"`
}

type responseEntry struct {
	Response entryResponse `json:"response"`
}

type entryResponse struct {
	Status  string            `json:"status"`
	Outcome *operationOutcome `json:"outcome,omitempty"`
}

// entryAnswer returns entry i's HTTP status and its issue.
func entryAnswer(i int, e app.EntryResult, single bool) (int, issue) {
	expr := fmt.Sprintf("Bundle.entry[%d]", i)
	if single {
		expr = e.ResourceType
	}
	if e.Err != nil {
		status, _, _, is := problem(e.Err)
		return status, is
	}
	if len(e.Events) == 0 {
		is := issue{Severity: "information", Code: "informational", Diagnostics: e.Note}
		if expr != "" {
			is.Expression = []string{expr}
		}
		return http.StatusOK, is
	}
	status := http.StatusOK
	for _, ev := range e.Events {
		if !ev.Duplicate {
			status = http.StatusCreated
		}
	}
	ev := e.Events[0]
	diag := fmt.Sprintf("accepted 1 event (%s.%s)", ev.Kind, ev.Action)
	if ev.Duplicate {
		diag += "; already stored"
	}
	return status, issue{Severity: "information", Code: "informational", Diagnostics: diag}
}

// writePushSuccess answers a processed push and returns the status.
func writePushSuccess(w http.ResponseWriter, res app.PushResult) int {
	switch res.Type {
	case fhirnotify.PushResource:
		status, is := entryAnswer(0, res.Entries[0], true)
		writeOutcomeIssues(w, status, []issue{is})
		return status
	case fhirnotify.PushTransaction, fhirnotify.PushBatch:
		out := bundleResponse{ResourceType: "Bundle", Type: res.Type + "-response", Entry: make([]responseEntry, len(res.Entries))}
		for i, e := range res.Entries {
			status, is := entryAnswer(i, e, false)
			out.Entry[i].Response = entryResponse{Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
				Outcome: &operationOutcome{ResourceType: "OperationOutcome", Issue: []issue{is}}}
		}
		writeJSON(w, http.StatusOK, out)
		return http.StatusOK
	}
	issues := []issue{{Severity: "information", Code: "informational", Diagnostics: fmt.Sprintf("accepted %d event(s)", len(res.Events))}}
	for i, e := range res.Entries {
		if len(e.Events) == 0 {
			_, is := entryAnswer(i, e, false)
			issues = append(issues, is)
		}
	}
	writeOutcomeIssues(w, http.StatusOK, issues)
	return http.StatusOK
}

// finishPush writes the answer, counts it and logs one line about it.
func (s *Server) finishPush(r *http.Request, w http.ResponseWriter, start time.Time, source string, res app.PushResult, err error) {
	typ := res.Type
	if typ == "" {
		typ = "unknown"
	}
	var (
		status          int
		outcome, reason string
	)
	if err != nil {
		status, outcome, reason = writeError(w, err)
	} else {
		status = writePushSuccess(w, res)
		outcome = outcomeAccepted
	}
	rejected := 0
	rejectedReason := reason
	for _, e := range res.Entries {
		if e.Err != nil {
			rejected++
			if err == nil {
				outcome = "partial"
				if rejectedReason == "" {
					rejectedReason = e.Err.Reason
				}
			}
		}
	}
	s.metrics.Push(source, typ, outcome)
	s.metrics.Handled(inputCounts(source, app.InputFHIRPush, typ, res.Events, res.SameVersion, rejectedReason, start))

	ids := make([]string, 0, len(res.Events))
	for _, e := range res.Events {
		ids = append(ids, e.ID)
	}
	attrs := []any{"source", source, "type", typ, "status", status, "outcome", outcome,
		"entries", len(res.Entries), "rejectedEntries", rejected, "events", len(res.Events), "eventIds", ids, "unmapped", res.Unmapped}
	attrs, level := outcomeAttrs(attrs, err, reason, status)
	s.logger.Log(r.Context(), level, "push handled", attrs...)
}

// writeOutcomeIssues renders an OperationOutcome with the given issues.
func writeOutcomeIssues(w http.ResponseWriter, status int, issues []issue) {
	writeJSON(w, status, operationOutcome{ResourceType: "OperationOutcome", Issue: issues})
}

// writeJSON renders v as FHIR JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // cannot happen for these types
		status = http.StatusInternalServerError
		b = []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception"}]}`)
	}
	w.Header().Set("Content-Type", contentTypeFHIR)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
