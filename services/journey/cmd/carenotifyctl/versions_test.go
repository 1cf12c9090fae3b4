package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
)

// The fake answers as the journey service does (which
// internal/service TestApplyJourneyVersions tests): a file containing
// "bad" is refused with its problems, others become version 2.

func (a *traceAdmin) ApplyJourney(_ context.Context, req *journeyv1.ApplyJourneyRequest) (*journeyv1.ApplyJourneyResponse, error) {
	if strings.Contains(string(req.GetContent()), "bad") {
		st, _ := status.New(codes.InvalidArgument, "journey file refused").WithDetails(
			&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "content", Description: "x"}}},
			&journeyv1.JourneyProblems{Problems: []*journeyv1.JourneyProblem{{File: req.GetFileName(), Line: 9, Message: `step 1: template "nope" does not exist`}}})
		return nil, st.Err()
	}
	return &journeyv1.ApplyJourneyResponse{Changed: true, Version: &journeyv1.JourneyVersion{
		JourneyId: "r", Version: 2, Hash: strings.Repeat("ab", 32), Principal: "eddie", Message: req.GetMessage(),
	}}, nil
}

func (a *traceAdmin) GetJourneyHistory(_ context.Context, req *journeyv1.GetJourneyHistoryRequest) (*journeyv1.GetJourneyHistoryResponse, error) {
	at := timestamppb.New(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	return &journeyv1.GetJourneyHistoryResponse{Versions: []*journeyv1.JourneyVersion{
		{JourneyId: req.GetJourneyId(), Version: 1, Hash: strings.Repeat("cd", 32), Principal: "seed:deploy/examples/journeys", AppliedAt: at, File: "r.yaml"},
		{JourneyId: req.GetJourneyId(), Version: 2, Hash: strings.Repeat("ab", 32), Principal: "eddie", AppliedAt: at, File: "r.yaml", Message: "fix"},
		{JourneyId: req.GetJourneyId(), Version: 3, Hash: strings.Repeat("cd", 32), Principal: "eddie", AppliedAt: at, File: "r.yaml", RestoredFrom: 1},
	}}, nil
}

func (a *traceAdmin) RollbackJourney(_ context.Context, req *journeyv1.RollbackJourneyRequest) (*journeyv1.RollbackJourneyResponse, error) {
	return &journeyv1.RollbackJourneyResponse{Changed: true, Version: &journeyv1.JourneyVersion{
		JourneyId: req.GetJourneyId(), Version: 3, Hash: strings.Repeat("cd", 32), Principal: "eddie", RestoredFrom: req.GetToVersion(),
	}}, nil
}

func TestJourneysApplyHistoryRollbackCommands(t *testing.T) {
	_, addr := startTraceAdmin(t)
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "bad.yaml")
	for path, content := range map[string]string{good: "id: r\n", bad: "id: bad\n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		give    []string
		want    []string
		wantErr string
	}{
		{
			name: "apply", give: []string{"journeys", "apply", "--journey-addr", addr, "--message", "fix", good},
			want: []string{good + ": applied: journey r version 2 (abababababab) by eddie\n"},
		},
		{
			name: "apply refused", give: []string{"journeys", "apply", "--journey-addr", addr, good, bad},
			want:    []string{bad + `:9: step 1: template "nope" does not exist` + "\n", bad + ": refused; the running version keeps running\n"},
			wantErr: "1 of 2 journey files refused",
		},
		{
			name: "history", give: []string{"journeys", "history", "--journey-addr", addr, "r"},
			want: []string{"VERSION", "1        2026-12-03 09:00:00  seed:deploy/examples/journeys  cdcdcdcdcdcd  r.yaml", "eddie", "fix", "rollback to 1"},
		},
		{
			name: "rollback", give: []string{"journeys", "rollback", "--journey-addr", addr, "r", "--to", "1"},
			want: []string{"r: applied: journey r version 3 (cdcdcdcdcdcd) by eddie\n"},
		},
		{
			name: "rollback needs --to", give: []string{"journeys", "rollback", "--journey-addr", addr, "r"},
			wantErr: `required flag(s) "to" not set`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRootCmd()
			var buf bytes.Buffer
			root.SetOut(&buf)
			root.SetErr(&buf)
			root.SetArgs(tt.give)
			err := root.ExecuteContext(t.Context())
			out := buf.String()
			if gotErr := ""; err != nil {
				gotErr = err.Error()
				if gotErr != tt.wantErr {
					t.Errorf("error = %q, want %q", gotErr, tt.wantErr)
				}
			} else if tt.wantErr != "" {
				t.Errorf("error = nil, want %q", tt.wantErr)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
