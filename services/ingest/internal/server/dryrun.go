package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/carenotify/carenotify/pkg/hl7"
	hl7mllp "github.com/carenotify/carenotify/pkg/hl7/mllp"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/mllp"
)

// Media types of a dry-run input. Anything else (or none) is sniffed.
const (
	mediaHL7   = "x-application/hl7-v2+er7"
	mediaHL7v2 = "application/hl7-v2"
)

// maxDryRunParts bounds the files of one dry run.
const maxDryRunParts = 50

// mapAnswer is the body of POST /admin/map/{source}. It holds PHI (the
// events carry what the caller posted): it goes only to the admin who
// posted it and is never logged.
type mapAnswer struct {
	Source   string `json:"source"`
	Tenant   string `json:"tenant"`
	Baseline string `json:"baseline"`
	// Inputs has one entry per message, in the order they were run.
	Inputs []mapInput `json:"inputs"`
}

// mapInput is what one message (one FHIR body, one HL7 v2 message or
// batch) would have given on the live path.
type mapInput struct {
	// Part is the file's position in the request (1-based) and Name its
	// file name when multipart; Message the message's position in it.
	Part    int    `json:"part"`
	Name    string `json:"name,omitempty"`
	Message int    `json:"message"`
	// Input is fhir-notification, fhir-push or hl7v2 (app.Input*).
	Input string `json:"input"`
	// Status and Outcome are the HTTP answer a FHIR sender would get.
	Status  int             `json:"status,omitempty"`
	Outcome json.RawMessage `json:"outcome,omitempty"`
	// ACK is the HL7 acknowledgement, segments separated by \r.
	ACK string `json:"ack,omitempty"`
	// Events are the ClinicalEvents the live path would publish
	// (protojson), without the ones an earlier input of this dry run
	// already gave (JetStream would drop them as duplicates).
	Events []json.RawMessage `json:"events"`
	// Duplicates counts those.
	Duplicates int `json:"duplicates,omitempty"`
	// DeadLetters are the reasons the input would be kept on EHR_DEAD.
	DeadLetters []string `json:"deadLetters,omitempty"`
}

// dryRunInput is one file of a dry-run request.
type dryRunInput struct {
	name, contentType string
	body              []byte
}

// mapDryRun handles POST /admin/map/{source}?baseline=current|none: the
// body (or each part of a multipart body) is run through the live path of
// source — FHIR notification, FHIR push or HL7 v2 — by an app.DryRun:
// the same parsing and mapping, nothing published, dead-lettered, audited
// or written to the last-seen state. Admin token only.
func (s *Server) mapDryRun(w http.ResponseWriter, r *http.Request) {
	if !s.isAdmin(r.Header.Get("Authorization")) {
		writeStatusError(w, http.StatusUnauthorized)
		return
	}
	cred, ok := s.auth.method(r.PathValue("source"))
	if !ok {
		writeAdminError(w, http.StatusNotFound, "no source with that name is configured")
		return
	}
	baseline := r.URL.Query().Get("baseline")
	switch baseline {
	case "":
		baseline = app.BaselineCurrent
	case app.BaselineCurrent, app.BaselineNone:
	default:
		writeAdminError(w, http.StatusBadRequest, "baseline must be current or none")
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyReadTimeout))
	inputs, status, err := readDryRunInputs(http.MaxBytesReader(w, r.Body, s.maxBody), r.Header.Get("Content-Type"))
	if err != nil {
		writeAdminError(w, status, err.Error())
		return
	}
	src := cred.source
	dry := s.app.NewDryRun(baseline)
	ans := mapAnswer{Source: src.Name, Tenant: src.Tenant, Baseline: baseline, Inputs: []mapInput{}}
	events := 0
	for i, in := range inputs {
		kind, err := sniffInput(in)
		if err != nil {
			writeAdminError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("part %d: %v", i+1, err))
			return
		}
		var results []mapInput
		if kind == app.InputHL7 {
			results, err = s.dryRunHL7(r, dry, src, in.body)
		} else {
			results = []mapInput{s.dryRunFHIR(r, dry, src, in.body)}
		}
		if err != nil {
			writeAdminError(w, http.StatusBadRequest, fmt.Sprintf("part %d: %v", i+1, err))
			return
		}
		for j := range results {
			results[j].Part, results[j].Name, results[j].Message = i+1, in.name, j+1
			events += len(results[j].Events)
		}
		ans.Inputs = append(ans.Inputs, results...)
	}
	s.logger.InfoContext(r.Context(), "dry run mapped", "source", src.Name, "tenant", src.Tenant, "baseline", baseline,
		"parts", len(inputs), "messages", len(ans.Inputs), "events", events)
	writeAdminJSON(w, ans)
}

// dryRunFHIR runs one FHIR body: a notification Bundle (history or
// subscription-notification) on the notification path, anything else on
// the push path (a Bundle posted to [base], a resource to [base]/<type>).
func (s *Server) dryRunFHIR(r *http.Request, dry *app.DryRun, src app.Source, body []byte) mapInput {
	rec := httptest.NewRecorder()
	var out mapInput
	if typ, notification := fhirShape(body); notification {
		out.Input = app.InputFHIRNotification
		res, err := dry.App.Ingest(r.Context(), src, body)
		if err != nil {
			writeError(rec, err)
		} else {
			writeSuccess(rec, res)
		}
	} else {
		out.Input = app.InputFHIRPush
		pathType := typ
		if typ == "Bundle" || !resourceTypeRE.MatchString(typ) {
			pathType = ""
		}
		res, err := dry.App.IngestPush(r.Context(), src, pathType, body)
		if err != nil {
			writeError(rec, err)
		} else {
			writePushSuccess(rec, res)
		}
	}
	out.Status, out.Outcome = rec.Code, rec.Body.Bytes()
	if !json.Valid(out.Outcome) {
		out.Outcome = nil
	}
	out.collect(dry)
	return out
}

// dryRunHL7 runs every message of an HL7 v2 file as the MLLP listener
// would: each MLLP frame, or each message of a file of bare messages, as
// one message; an FHS/BHS batch as one batch (one batch ACK).
func (s *Server) dryRunHL7(r *http.Request, dry *app.DryRun, src app.Source, body []byte) ([]mapInput, error) {
	msgs, err := splitHL7File(body)
	if err != nil {
		return nil, err
	}
	out := make([]mapInput, 0, len(msgs))
	for _, m := range msgs {
		ack, _ := mllp.Replay(r.Context(), dry.App, src, m, s.logger.With("dryRun", true))
		in := mapInput{Input: app.InputHL7, ACK: string(ack)}
		in.collect(dry)
		out = append(out, in)
	}
	return out, nil
}

// collect moves the events and dead letters of the input just run into in.
func (in *mapInput) collect(dry *app.DryRun) {
	in.Events = []json.RawMessage{}
	for _, e := range dry.Events() {
		if e.Duplicate {
			in.Duplicates++
			continue
		}
		b, err := protojson.Marshal(e.Event)
		if err != nil { // cannot happen for a valid message
			continue
		}
		in.Events = append(in.Events, b)
	}
	in.DeadLetters = dry.DeadLetters()
}

// splitHL7File returns the messages (or batches) of an HL7 v2 file: its
// MLLP frames when it is framed, the whole file when it is an FHS/BHS
// batch, else each MSH-led message.
func splitHL7File(body []byte) ([][]byte, error) {
	if i := bytes.IndexByte(body, 0x0b); i >= 0 && len(bytes.TrimSpace(body[:i])) == 0 {
		var out [][]byte
		rd := hl7mllp.NewReader(bytes.NewReader(body), len(body))
		for {
			f, err := rd.ReadFrame()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("the MLLP framing is broken after %d frame(s)", len(out))
			}
			out = append(out, f)
		}
		return out, nil
	}
	if hl7.IsBatch(body) {
		return [][]byte{body}, nil
	}
	b, err := hl7.SplitBatch(body)
	if err != nil || len(b.Messages) == 0 {
		// The whole file then goes the live way, whose answer says what
		// is wrong (AR with the segment).
		return [][]byte{body}, nil //nolint:nilerr // reported by the ACK
	}
	return b.Messages, nil
}

// sniffInput tells an HL7 v2 file from a FHIR JSON body by its media type
// or, without one (or a generic one), by its first bytes.
func sniffInput(in dryRunInput) (string, error) {
	mt, _, _ := mime.ParseMediaType(in.contentType)
	switch mt {
	case mediaHL7, mediaHL7v2:
		return app.InputHL7, nil
	case "application/fhir+json", "application/json":
		return app.InputFHIRPush, nil
	}
	t := bytes.TrimLeft(bytes.TrimPrefix(in.body, []byte("\xef\xbb\xbf")), " \t\r\n")
	switch {
	case len(t) > 0 && t[0] == '{':
		return app.InputFHIRPush, nil
	case len(t) > 0 && t[0] == 0x0b, bytes.HasPrefix(t, []byte("MSH")), hl7.IsBatch(t):
		return app.InputHL7, nil
	}
	return "", errors.New("neither FHIR JSON nor HL7 v2: send Content-Type application/fhir+json or " + mediaHL7)
}

// fhirShape returns the body's resourceType and whether it is a
// subscription notification Bundle. A body that does not decode is
// neither: the push path then answers what is wrong with it.
func fhirShape(body []byte) (resourceType string, notification bool) {
	var head struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
	}
	if json.Unmarshal(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")), &head) != nil {
		return "", false
	}
	isNotification := head.ResourceType == "Bundle" && (head.Type == "history" || head.Type == "subscription-notification")
	return head.ResourceType, isNotification
}

// readDryRunInputs reads the request body: one input, or one per part of
// a multipart/form-data or multipart/mixed body (each with its own
// Content-Type). Errors are plain and PHI-free, with the status to give.
func readDryRunInputs(body io.Reader, contentType string) ([]dryRunInput, int, error) {
	tooLarge := func(err error) (int, error) {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return http.StatusRequestEntityTooLarge, errors.New("the body is larger than this endpoint accepts")
		}
		return http.StatusBadRequest, errors.New("the body could not be read completely")
	}
	mt, params, _ := mime.ParseMediaType(contentType)
	if !strings.HasPrefix(mt, "multipart/") {
		b, err := io.ReadAll(body)
		if err != nil {
			st, e := tooLarge(err)
			return nil, st, e
		}
		if len(b) == 0 {
			return nil, http.StatusBadRequest, errors.New("the body is empty")
		}
		return []dryRunInput{{contentType: contentType, body: b}}, 0, nil
	}
	if params["boundary"] == "" {
		return nil, http.StatusBadRequest, errors.New("a multipart body needs a boundary")
	}
	mr := multipart.NewReader(body, params["boundary"])
	var out []dryRunInput
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				st, e := tooLarge(err)
				return nil, st, e
			}
			return nil, http.StatusBadRequest, errors.New("the multipart body is malformed")
		}
		if len(out) == maxDryRunParts {
			return nil, http.StatusBadRequest, fmt.Errorf("at most %d files per dry run", maxDryRunParts)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			st, e := tooLarge(err)
			return nil, st, e
		}
		out = append(out, dryRunInput{name: p.FileName(), contentType: p.Header.Get("Content-Type"), body: b})
	}
	if len(out) == 0 {
		return nil, http.StatusBadRequest, errors.New("the multipart body has no parts")
	}
	return out, 0, nil
}

// writeAdminError renders an admin API error as {"error": msg}; msg is
// PHI-free.
func writeAdminError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
