package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/carenotify/carenotify/services/ingest/internal/app"
)

// contentTypeFHIR is the media type of every response.
const contentTypeFHIR = "application/fhir+json"

// operationOutcome is a FHIR R4 OperationOutcome.
type operationOutcome struct {
	ResourceType string  `json:"resourceType"`
	Issue        []issue `json:"issue"`
}

// issue is one OperationOutcome.issue. Diagnostics never hold input values.
type issue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

// requestError is a problem with the request itself, found before the app
// sees the body.
type requestError struct {
	status      int
	code        string
	reason      string
	diagnostics string
	// challenge is the WWW-Authenticate value of a 401; "Bearer" when empty.
	challenge string
}

func (e *requestError) Error() string { return e.reason + ": " + e.diagnostics }

var errUnauthenticated = &requestError{
	status: http.StatusUnauthorized, code: "login", reason: "unauthenticated",
	diagnostics: "unknown source or wrong bearer token; send Authorization: Bearer <token> as configured for this source",
}

// Outcome labels of ingest_notifications_total.
const (
	outcomeAccepted        = "accepted"
	outcomeDeferred        = "deferred"
	outcomeRejected        = "rejected"
	outcomeUnauthenticated = "unauthenticated"
	outcomeUnavailable     = "unavailable"
	outcomeFailed          = "failed"
)

// problem maps an error to its HTTP status, metrics outcome, reason code
// and OperationOutcome issue. It is the one place errors become statuses.
func problem(err error) (status int, outcome, reason string, is issue) {
	var (
		re *requestError
		ae *app.Error
	)
	switch {
	case errors.As(err, &re):
		outcome = outcomeRejected
		switch re.status {
		case http.StatusUnauthorized:
			outcome = outcomeUnauthenticated
		case http.StatusServiceUnavailable:
			outcome = outcomeUnavailable
		}
		return re.status, outcome, re.reason, issue{Severity: "error", Code: re.code, Diagnostics: re.diagnostics}
	case errors.As(err, &ae):
		is = issue{Severity: "error", Code: ae.Code, Diagnostics: ae.Diagnostics}
		if ae.Expression != "" {
			is.Expression = []string{ae.Expression}
		}
		switch ae.Kind {
		case app.KindInvalid:
			return http.StatusBadRequest, outcomeRejected, ae.Reason, is
		case app.KindUnprocessable:
			return http.StatusUnprocessableEntity, outcomeRejected, ae.Reason, is
		case app.KindUnavailable:
			return http.StatusServiceUnavailable, outcomeUnavailable, ae.Reason, is
		}
		is.Severity, is.Code = "fatal", "exception"
		return http.StatusInternalServerError, outcomeFailed, ae.Reason, is
	}
	return http.StatusInternalServerError, outcomeFailed, app.ReasonInternal,
		issue{Severity: "fatal", Code: "exception", Diagnostics: "internal error"}
}

// writeError answers with err's status and OperationOutcome.
func writeError(w http.ResponseWriter, err error) (status int, outcome, reason string) {
	status, outcome, reason, is := problem(err)
	switch status {
	case http.StatusUnauthorized:
		challenge := "Bearer"
		if re, ok := errors.AsType[*requestError](err); ok && re.challenge != "" {
			challenge = re.challenge
		}
		w.Header().Set("WWW-Authenticate", challenge)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
	}
	writeOutcome(w, status, is)
	return status, outcome, reason
}

// writeSuccess answers 200 for a processed notification.
func writeSuccess(w http.ResponseWriter, res app.Result) string {
	if res.Deferred {
		writeOutcome(w, http.StatusOK, issue{Severity: "warning", Code: "not-supported",
			Diagnostics: fmt.Sprintf("%s notification payloads are not processed yet: accepted 0 event(s); the notification was kept for replay (reason %s)",
				res.Payload, app.ReasonPayloadNotSupported)})
		return outcomeDeferred
	}
	diag := fmt.Sprintf("accepted %d event(s)", len(res.Events))
	if res.Unchanged > 0 {
		diag += fmt.Sprintf("; %d resource(s) made no transition from their last-seen state", res.Unchanged)
	}
	writeOutcome(w, http.StatusOK, issue{Severity: "information", Code: "informational", Diagnostics: diag})
	return outcomeAccepted
}

// writeOutcome renders an OperationOutcome with one issue.
func writeOutcome(w http.ResponseWriter, status int, is issue) {
	b, err := json.Marshal(operationOutcome{ResourceType: "OperationOutcome", Issue: []issue{is}})
	if err != nil { // cannot happen for these types
		b = []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception"}]}`)
	}
	w.Header().Set("Content-Type", contentTypeFHIR)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
