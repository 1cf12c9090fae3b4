package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
)

// File kinds journeys simulate reads.
const (
	fileEvents = "events" // ClinicalEvent proto JSON
	fileFHIR   = "fhir"   // FHIR JSON: notification Bundle, Bundle or resource
	fileHL7    = "hl7v2"  // HL7 v2: bare messages, MLLP frames or a batch
)

// detectFile tells ClinicalEvent JSON from FHIR JSON and HL7 v2 by content.
func detectFile(b []byte) string {
	t := bytes.TrimLeft(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), " \t\r\n")
	switch {
	case len(t) > 0 && t[0] == 0x0b, bytes.HasPrefix(t, []byte("MSH")), bytes.HasPrefix(t, []byte("FHS")), bytes.HasPrefix(t, []byte("BHS")):
		return fileHL7
	case len(t) > 0 && t[0] == '{':
		var head struct {
			ResourceType string `json:"resourceType"`
		}
		dec := json.NewDecoder(bytes.NewReader(t))
		if dec.Decode(&head) == nil && head.ResourceType != "" {
			return fileFHIR
		}
	}
	return fileEvents
}

// ehrFile is one FHIR or HL7 v2 file for ingest's dry-run mapping.
type ehrFile struct {
	name, kind string
	body       []byte
}

// mapAnswer is ingest's POST /admin/map/{source} answer (see
// services/ingest/README.md, "Dry-run mapping").
type mapAnswer struct {
	Inputs []struct {
		Part        int               `json:"part"`
		Message     int               `json:"message"`
		Input       string            `json:"input"`
		Status      int               `json:"status"`
		Outcome     json.RawMessage   `json:"outcome"`
		ACK         string            `json:"ack"`
		Events      []json.RawMessage `json:"events"`
		DeadLetters []string          `json:"deadLetters"`
	} `json:"inputs"`
}

// mapFiles posts files to ingest's dry-run mapping as one multipart
// request (so later files see earlier files' transitions) and returns the
// events of each file, by index. Problems (an input ingest would reject)
// are returned as PHI-free lines.
func (c *ingestAdmin) mapFiles(ctx context.Context, source, baseline string, files []ehrFile) ([][]*eventsv1.ClinicalEvent, []string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, f := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, filepath.Base(f.name)))
		ct := "application/fhir+json"
		if f.kind == fileHL7 {
			ct = "x-application/hl7-v2+er7"
		}
		h.Set("Content-Type", ct)
		pw, err := mw.CreatePart(h)
		if err != nil {
			return nil, nil, err
		}
		if _, err := pw.Write(f.body); err != nil {
			return nil, nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, nil, err
	}
	q := url.Values{"baseline": {baseline}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/admin/map/"+url.PathEscape(source)+"?"+q.Encode(), &body)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("ingest admin api: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
	if err != nil {
		return nil, nil, fmt.Errorf("ingest admin api: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return nil, nil, errors.New("ingest refused the admin token (is INGEST_ADMIN_TOKEN set on ingest, and the same?)")
	case http.StatusNotFound:
		return nil, nil, fmt.Errorf("ingest has no source %q (--source)", source)
	default:
		msg := strings.TrimSpace(string(raw))
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return nil, nil, fmt.Errorf("ingest answered %d: %s", resp.StatusCode, msg)
	}
	var ans mapAnswer
	if err := json.Unmarshal(raw, &ans); err != nil {
		return nil, nil, errors.New("ingest answered a dry-run mapping that does not decode")
	}
	out := make([][]*eventsv1.ClinicalEvent, len(files))
	var problems []string
	for _, in := range ans.Inputs {
		i := in.Part - 1
		if i < 0 || i >= len(files) {
			return nil, nil, errors.New("ingest answered a part that was not sent")
		}
		if len(in.DeadLetters) > 0 {
			problems = append(problems, fmt.Sprintf("%s message %d: ingest would reject it (%s): %s",
				files[i].name, in.Message, strings.Join(in.DeadLetters, ", "), answerText(in.Status, in.Outcome, in.ACK)))
		}
		for _, e := range in.Events {
			var ev eventsv1.ClinicalEvent
			if err := protojson.Unmarshal(e, &ev); err != nil {
				return nil, nil, errors.New("ingest answered an event that does not decode")
			}
			out[i] = append(out[i], &ev)
		}
	}
	return out, problems, nil
}

// answerText is the PHI-free part of ingest's answer: the
// OperationOutcome's diagnostics or the ACK's ERR segments.
func answerText(status int, outcome json.RawMessage, ack string) string {
	if ack != "" {
		var errs []string
		for _, seg := range strings.Split(ack, "\r") {
			if strings.HasPrefix(seg, "ERR|") {
				errs = append(errs, seg)
			}
		}
		return strings.Join(errs, " ")
	}
	var oo struct {
		Issue []struct {
			Diagnostics string   `json:"diagnostics"`
			Expression  []string `json:"expression"`
		} `json:"issue"`
	}
	_ = json.Unmarshal(outcome, &oo)
	var parts []string
	for _, is := range oo.Issue {
		parts = append(parts, strings.TrimSpace(is.Diagnostics+" "+strings.Join(is.Expression, ",")))
	}
	return fmt.Sprintf("status %d: %s", status, strings.Join(parts, "; "))
}
