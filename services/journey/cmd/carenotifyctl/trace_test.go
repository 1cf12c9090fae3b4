package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
	"github.com/carenotify/carenotify/services/journey/internal/adminauth"
)

// traceAdmin answers Trace as the journey service does for a known
// patient, and records the requests. The real service behind it is
// tested in internal/service (TestTrace); this tests what the command
// adds: choosing the subject, masking, printing and errors.
type traceAdmin struct {
	journeyv1.UnimplementedAdminServiceServer
	mu   sync.Mutex
	reqs []*journeyv1.TraceRequest
	auth []string // the authorization header of each call
}

func (a *traceAdmin) Trace(ctx context.Context, req *journeyv1.TraceRequest) (*journeyv1.TraceResponse, error) {
	a.mu.Lock()
	a.reqs = append(a.reqs, proto.CloneOf(req))
	md, _ := metadata.FromIncomingContext(ctx)
	a.auth = append(a.auth, strings.Join(md.Get("authorization"), ","))
	a.mu.Unlock()
	if req.GetPatientId() == "bad id" {
		st, _ := status.New(codes.InvalidArgument, "invalid trace request").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "patient_id", Description: "a FHIR logical id"}},
		})
		return nil, st.Err()
	}
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	return &journeyv1.TraceResponse{PatientRef: strings.Repeat("ab", 32), Entries: []*journeyv1.TraceEntry{
		{Time: timestamppb.New(at), Service: "journey", Summary: "journey remind started by appointment.booked"},
		{Time: timestamppb.New(at.Add(time.Hour)), Service: "journey", Summary: "suppressed: consent revoked by admin at 2026-12-03T09:30:00Z (step 1 of remind)"},
	}}, nil
}

func startTraceAdmin(t *testing.T) (*traceAdmin, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &traceAdmin{}
	gs := grpc.NewServer()
	journeyv1.RegisterAdminServiceServer(gs, a)
	go func() { _ = gs.Serve(l) }()
	t.Cleanup(gs.Stop)
	return a, l.Addr().String()
}

func runTrace(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"trace", "--journey-addr", addr}, args...))
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

func TestTraceCommand(t *testing.T) {
	a, addr := startTraceAdmin(t)
	const patient = "pcanary-4411"

	t.Setenv("CARENOTIFY_TOKEN", "tok-from-env")
	out, err := runTrace(t, addr, "--tenant", "demo", patient)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Trace of patient p*********** in tenant demo (audit ref abababababab): 2 entries",
		"2026-12-03 09:00:00  journey  journey remind started by appointment.booked",
		"2026-12-03 10:00:00  journey  suppressed: consent revoked by admin at 2026-12-03T09:30:00Z (step 1 of remind)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, patient) {
		t.Errorf("output shows the patient id:\n%s", out)
	}

	ref := strings.Repeat("0f", 32)
	for _, args := range [][]string{
		{"--tenant", "demo", "0193f1c2-7a3b-7c4d-9e5f-0123456789ab"},
		{"--tenant", "demo", ref},
		{"--tenant", "demo", "--as", "message", "msg-1", "--token", "tok-from-flag"},
	} {
		if _, err := runTrace(t, addr, args...); err != nil {
			t.Fatalf("trace %v: %v", args, err)
		}
	}
	a.mu.Lock()
	got := a.reqs
	a.mu.Unlock()
	if len(got) != 4 || got[0].GetPatientId() != patient || got[1].GetMessageId() != "0193f1c2-7a3b-7c4d-9e5f-0123456789ab" ||
		got[2].GetPatientRef() != ref || got[3].GetMessageId() != "msg-1" || got[3].GetTenant() != "demo" {
		t.Errorf("requests = %v", got)
	}
	if a.auth[0] != "Bearer tok-from-env" || a.auth[3] != "Bearer tok-from-flag" {
		t.Errorf("authorization headers = %q", a.auth)
	}

	_, err = runTrace(t, addr, "--tenant", "demo", "bad id")
	if err == nil || !strings.Contains(err.Error(), "InvalidArgument: invalid trace request\n  patient_id: a FHIR logical id") {
		t.Errorf("bad request error = %v", err)
	}
	if _, err := runTrace(t, addr, patient); err == nil || !strings.Contains(err.Error(), "--tenant is required") {
		t.Errorf("no tenant: %v", err)
	}
	if _, err := runTrace(t, addr, "--tenant", "demo", "--as", "email", patient); err == nil || !strings.Contains(err.Error(), "--as must be") {
		t.Errorf("bad --as: %v", err)
	}
}

func TestAdminTokenGenerate(t *testing.T) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"admin", "token", "generate", "--principal", "alice", "--roles", "viewer,consent-admin"})
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || len(lines[0]) != 43 {
		t.Fatalf("output = %q, want a token and a line", out.String())
	}
	toks, err := adminauth.Load("", lines[1])
	if err != nil {
		t.Fatal(err)
	}
	p, err := toks.Authenticate(lines[0])
	if err != nil || p.ID != "alice" || !p.Has(adminauth.RoleConsentAdmin) || p.Has(adminauth.RoleEditor) {
		t.Errorf("generated token authenticates as %+v, %v", p, err)
	}
	if strings.Contains(lines[1], lines[0]) {
		t.Error("the file line holds the token")
	}
	root = newRootCmd()
	root.SetArgs([]string{"admin", "token", "generate", "--principal", "jane@example.org"})
	if err := root.ExecuteContext(t.Context()); err == nil {
		t.Error("an address was accepted as principal")
	}
}

// ValidateJourney answers as the service does for a file with one CEL
// problem, and valid for anything else.
func (a *traceAdmin) ValidateJourney(_ context.Context, req *journeyv1.ValidateJourneyRequest) (*journeyv1.ValidateJourneyResponse, error) {
	if strings.Contains(string(req.GetContent()), "patient.name") {
		return &journeyv1.ValidateJourneyResponse{Problems: []*journeyv1.JourneyProblem{
			{File: req.GetFileName(), Line: 4, Column: 14, Message: "when: column 8: undefined field 'name'"},
			{File: req.GetFileName(), Message: "the file is empty"},
		}}, nil
	}
	return &journeyv1.ValidateJourneyResponse{Valid: true, Journey: &journeyv1.Journey{Id: "r", Trigger: "appointment.booked", Purpose: "treatment", Steps: 2, Version: "abc"}}, nil
}

func TestJourneysValidateCommand(t *testing.T) {
	_, addr := startTraceAdmin(t)
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("id: r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("when: patient.name\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"journeys", "validate", "--journey-addr", addr, good, bad})
	err := root.ExecuteContext(t.Context())
	if err == nil || err.Error() != "1 of 2 journey files have problems" {
		t.Errorf("validate = %v", err)
	}
	for _, want := range []string{
		good + ": ok: journey r, appointment.booked, treatment, 2 steps, version abc\n",
		bad + ":4:14: when: column 8: undefined field 'name'\n",
		bad + ": the file is empty\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// Simulate answers one started journey per event, echoing the event id.
func (a *traceAdmin) Simulate(_ context.Context, req *journeyv1.SimulateRequest) (*journeyv1.SimulateResponse, error) {
	resp := &journeyv1.SimulateResponse{}
	for _, ev := range req.GetEvents() {
		resp.Events = append(resp.Events, &journeyv1.SimulatedEvent{EventId: ev.GetEventId(), Event: ev.GetKind() + "." + ev.GetAction(), Journeys: []*journeyv1.SimulatedJourney{
			{Journey: "r", Started: true, Outcome: "started", Messages: []*journeyv1.SimulatedMessage{
				{Step: "1", Channel: "email", Template: "t", SendAt: req.GetAt(), Note: "deferred by quiet hours to their end"},
			}},
		}})
	}
	return resp, nil
}

func TestJourneysSimulateCommand(t *testing.T) {
	_, addr := startTraceAdmin(t)
	dir := t.TempDir()
	lines := filepath.Join(dir, "events.jsonl")
	content := `{"eventId": "e1", "kind": "appointment", "action": "booked", "patient": {"givenNames": ["Zebulonia"]}}` + "\n" +
		`{"eventId": "e2", "kind": "appointment", "action": "cancelled"}` + "\n"
	if err := os.WriteFile(lines, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"journeys", "simulate", "--journey-addr", addr, "-f", lines, "--at", "2031-05-03T14:00:00Z"})
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := "event e1 (appointment.booked):\n  journey r: started\n    2031-05-03T14:00:00Z  step 1  email  template t  (deferred by quiet hours to their end)\n" +
		"event e2 (appointment.cancelled):\n"
	if !strings.HasPrefix(out.String(), want) || strings.Contains(out.String(), "Zebulonia") {
		t.Errorf("output:\n%s\nwant prefix:\n%s", out.String(), want)
	}

	hl7 := filepath.Join(dir, "a.hl7")
	if err := os.WriteFile(hl7, []byte("MSH|^~\\&|Zebulonia\r"), 0o600); err != nil {
		t.Fatal(err)
	}
	root = newRootCmd()
	root.SetArgs([]string{"journeys", "simulate", "--journey-addr", addr, "-f", hl7})
	err := root.ExecuteContext(t.Context())
	if err == nil || !strings.Contains(err.Error(), "--source is required for FHIR and HL7 v2 files") || strings.Contains(err.Error(), "Zebulonia") {
		t.Errorf("simulate of an HL7 file = %v", err)
	}
}
