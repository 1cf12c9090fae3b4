package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/hl7/hl7test"
	"github.com/carenotify/carenotify/services/ingest/internal/server"
)

// mapFile is one file of a dry-run request.
type mapFile struct {
	name, contentType string
	body              []byte
}

// mapAnswer is the part of POST /admin/map's answer the tests read.
type mapAnswer struct {
	Source, Tenant, Baseline string
	Inputs                   []struct {
		Part, Message int
		Name, Input   string
		Status        int
		Outcome       outcome
		ACK           string
		Events        []struct {
			EventID    string `json:"eventId"`
			Tenant     string `json:"tenant"`
			Kind       string `json:"kind"`
			Action     string `json:"action"`
			SubjectRef string `json:"subjectRef"`
			Patient    struct {
				ID string `json:"id"`
			} `json:"patient"`
			Appointment struct {
				Start string `json:"start"`
			} `json:"appointment"`
		}
		Duplicates  int
		DeadLetters []string
	}
}

// summary is "<input>:<kind>.<action>,..." per input, for comparing.
func (a mapAnswer) summary() []string {
	var out []string
	for _, in := range a.Inputs {
		s := in.Input + ":"
		for i, ev := range in.Events {
			if i > 0 {
				s += ","
			}
			s += ev.Kind + "." + ev.Action
		}
		if len(in.DeadLetters) > 0 {
			s += " dead=" + strings.Join(in.DeadLetters, ",")
		}
		out = append(out, s)
	}
	return out
}

func newMapEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, func(o *server.Options) { o.AdminToken = adminToken })
}

// postMap posts files (one as the body, several as multipart/form-data)
// to /admin/map/<source><query> and returns the status and raw body.
func (e *env) postMap(t *testing.T, source, query, token string, files ...mapFile) (int, []byte) {
	t.Helper()
	var body bytes.Buffer
	ct := ""
	if len(files) == 1 {
		body.Write(files[0].body)
		ct = files[0].contentType
	} else {
		mw := multipart.NewWriter(&body)
		for _, f := range files {
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", `form-data; name="file"; filename="`+f.name+`"`)
			if f.contentType != "" {
				h.Set("Content-Type", f.contentType)
			}
			pw, err := mw.CreatePart(h)
			if err != nil {
				t.Fatal(err)
			}
			pw.Write(f.body)
		}
		mw.Close()
		ct = mw.FormDataContentType()
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/admin/map/"+source+query, &body)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (e *env) mapOK(t *testing.T, source, query string, files ...mapFile) mapAnswer {
	t.Helper()
	status, b := e.postMap(t, source, query, adminToken, files...)
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, b)
	}
	var a mapAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("answer does not decode: %v: %s", err, b)
	}
	return a
}

// rescheduled is the corpus SIU^S13 with the appointment moved two days
// later (the corpus S13 keeps the S12's time, which is no reschedule).
func rescheduled(t *testing.T) []byte {
	t.Helper()
	return bytes.ReplaceAll(hl7test.Read(t, "SIU_S13/msconv-SIU-S13-01.hl7"), []byte("20210924"), []byte("20210926"))
}

// redisSnapshot is every key of the test's Redis with its serialised value.
func (e *env) redisSnapshot(t *testing.T) map[string]string {
	t.Helper()
	keys, err := e.redis.Keys(t.Context(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range keys {
		v, err := e.redis.Dump(t.Context(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

// assertNothingStored fails when the dry run left anything in JetStream or
// Redis, or a PHI canary of the corpus message in the logs.
func (e *env) assertNothingStored(t *testing.T, redisBefore map[string]string, events int) {
	t.Helper()
	if n := len(e.messages(t, "EHR_EVENTS")); n != events {
		t.Errorf("EHR_EVENTS holds %d messages, want %d", n, events)
	}
	if n := len(e.messages(t, "EHR_DEAD")); n != 0 {
		t.Errorf("EHR_DEAD holds %d messages, want none", n)
	}
	if diff := cmp.Diff(redisBefore, e.redisSnapshot(t)); diff != "" {
		t.Errorf("Redis changed (-before +after):\n%s", diff)
	}
	for _, canary := range []string{"EVERYMAN", "PATID1234", "Angela", "Ulcerative"} {
		if strings.Contains(e.logs.String(), canary) {
			t.Errorf("logs contain %q", canary)
		}
	}
}

func TestMapDryRunHL7BookedThenRescheduled(t *testing.T) {
	e := newMapEnv(t)
	before := e.redisSnapshot(t)
	a := e.mapOK(t, "demo", "",
		mapFile{name: "s12.hl7", contentType: "x-application/hl7-v2+er7", body: hl7test.Read(t, "SIU_S12/msconv-SIU-S12-01.hl7")},
		mapFile{name: "s13.hl7", body: rescheduled(t)}, // sniffed
	)
	want := []string{"hl7v2:appointment.booked", "hl7v2:appointment.rescheduled"}
	if diff := cmp.Diff(want, a.summary()); diff != "" {
		t.Fatalf("inputs (-want +got):\n%s", diff)
	}
	if a.Baseline != "current" || a.Tenant != "demo" {
		t.Errorf("baseline %q tenant %q, want current, demo", a.Baseline, a.Tenant)
	}
	first, second := a.Inputs[0].Events[0], a.Inputs[1].Events[0]
	if first.SubjectRef == "" || first.SubjectRef != second.SubjectRef {
		t.Errorf("subject refs %q, %q: want the same appointment", first.SubjectRef, second.SubjectRef)
	}
	if first.EventID == second.EventID || first.EventID == "" {
		t.Errorf("event ids %q, %q: want two distinct ids", first.EventID, second.EventID)
	}
	if !strings.HasPrefix(second.Appointment.Start, "2021-09-26") {
		t.Errorf("rescheduled start %q, want 2021-09-26…", second.Appointment.Start)
	}
	for i, in := range a.Inputs {
		if !strings.Contains(in.ACK, "MSA|AA|") || in.Part != i+1 || in.Message != 1 {
			t.Errorf("input %d: part %d message %d ack %q, want AA of part %d", i, in.Part, in.Message, in.ACK, i+1)
		}
	}
	e.assertNothingStored(t, before, 0)
}

func TestMapDryRunBaselines(t *testing.T) {
	e := newMapEnv(t)
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "appointment-booked-notification.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The live path sees the booking first.
	if r := e.post(t, demo(body)); r.status != http.StatusOK {
		t.Fatalf("live post: %d %v", r.status, r.outcome)
	}
	before := e.redisSnapshot(t)
	fhir := mapFile{contentType: "application/fhir+json", body: body}

	cur := e.mapOK(t, "demo", "?baseline=current", fhir)
	if diff := cmp.Diff([]string{"fhir-notification:"}, cur.summary()); diff != "" {
		t.Errorf("baseline current (-want +got):\n%s", diff)
	}
	if d := cur.Inputs[0].Outcome.Issue[0].Diagnostics; !strings.Contains(d, "no transition") || cur.Inputs[0].Status != http.StatusOK {
		t.Errorf("baseline current: %d %q, want 200 saying no transition", cur.Inputs[0].Status, d)
	}
	none := e.mapOK(t, "demo", "?baseline=none", fhir)
	if diff := cmp.Diff([]string{"fhir-notification:appointment.booked"}, none.summary()); diff != "" {
		t.Errorf("baseline none (-want +got):\n%s", diff)
	}
	e.assertNothingStored(t, before, 1)
}

func TestMapDryRunErrorsAreTheLivePathsAnswers(t *testing.T) {
	e := newMapEnv(t)
	before := e.redisSnapshot(t)
	bad := mapFile{contentType: "application/fhir+json", body: []byte(`{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"Parameters"}}]`)}
	a := e.mapOK(t, "demo", "", bad)
	in := a.Inputs[0]
	if in.Status != http.StatusBadRequest || in.Outcome.ResourceType != "OperationOutcome" || len(in.DeadLetters) != 1 {
		t.Errorf("truncated JSON: status %d outcome %+v dead %v, want 400 OperationOutcome, kept for replay", in.Status, in.Outcome, in.DeadLetters)
	}
	// An SIU^S12 without its SCH segment: AE, and the ERR names SCH.
	var broken []byte
	for _, line := range bytes.SplitAfter(hl7test.Read(t, "SIU_S12/msconv-SIU-S12-01.hl7"), []byte("\n")) {
		if !bytes.HasPrefix(line, []byte("SCH|")) {
			broken = append(broken, line...)
		}
	}
	a = e.mapOK(t, "demo", "", mapFile{contentType: "x-application/hl7-v2+er7", body: broken})
	if ack := a.Inputs[0].ACK; !strings.Contains(ack, "MSA|AE|") || !strings.Contains(ack, "ERR|") || !strings.Contains(ack, "SCH") {
		t.Errorf("ACK %q, want AE with an ERR segment naming SCH", ack)
	}
	if d := a.Inputs[0].DeadLetters; len(d) != 1 {
		t.Errorf("dead letters %v, want the one the live path would keep", d)
	}
	e.assertNothingStored(t, before, 0)
}

func TestMapDryRunSeveralMessagesPerFile(t *testing.T) {
	e := newMapEnv(t)
	s12 := hl7test.Read(t, "SIU_S12/msconv-SIU-S12-01.hl7")
	s13 := rescheduled(t)
	frame := func(m []byte) []byte { return append(append([]byte{0x0b}, m...), 0x1c, 0x0d) }
	tests := []struct {
		name string
		give []byte
		want []string
	}{
		{name: "newline separated", give: append(append(slices.Clone(s12), '\n'), s13...),
			want: []string{"hl7v2:appointment.booked", "hl7v2:appointment.rescheduled"}},
		{name: "MLLP framed", give: append(frame(s12), frame(s13)...),
			want: []string{"hl7v2:appointment.booked", "hl7v2:appointment.rescheduled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.mapOK(t, "demo", "?baseline=none", mapFile{body: tt.give})
			if diff := cmp.Diff(tt.want, a.summary()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	t.Run("batch", func(t *testing.T) {
		a := e.mapOK(t, "demo", "", mapFile{body: hl7test.Read(t, "batch/pyhl7-sample_batch.hl7")})
		if len(a.Inputs) != 1 || !strings.HasPrefix(a.Inputs[0].ACK, "BHS|") {
			t.Errorf("inputs %v, want one batch answered with a batch ACK", a.summary())
		}
	})
	e.assertNothingStored(t, map[string]string{}, 0)
}

func TestMapDryRunRefusals(t *testing.T) {
	e := newMapEnv(t)
	s12 := mapFile{contentType: "x-application/hl7-v2+er7", body: hl7test.Read(t, "SIU_S12/msconv-SIU-S12-01.hl7")}
	tests := []struct {
		name, source, query, token string
		give                       mapFile
		want                       int
	}{
		{name: "no token", source: "demo", give: s12, want: http.StatusUnauthorized},
		{name: "a source's token", source: "demo", token: "demo-token", give: s12, want: http.StatusUnauthorized},
		{name: "unknown source", source: "nope", token: adminToken, give: s12, want: http.StatusNotFound},
		{name: "bad baseline", source: "demo", query: "?baseline=yesterday", token: adminToken, give: s12, want: http.StatusBadRequest},
		{name: "neither FHIR nor HL7", source: "demo", token: adminToken, give: mapFile{body: []byte("hello")}, want: http.StatusUnsupportedMediaType},
		{name: "empty", source: "demo", token: adminToken, give: mapFile{}, want: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.postMap(t, tt.source, tt.query, tt.token, tt.give)
			if status != tt.want {
				t.Errorf("status %d (%s), want %d", status, body, tt.want)
			}
			if bytes.Contains(body, []byte("EVERYMAN")) {
				t.Errorf("refusal carries PHI: %s", body)
			}
		})
	}
}
