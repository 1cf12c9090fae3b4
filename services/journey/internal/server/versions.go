package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path/filepath"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// maxVersionMessage bounds the note kept with a version.
const maxVersionMessage = 512

// ApplyJourney checks a journey file and stores it as the journey's next
// version; the store watch makes every replica run it.
func (s *Admin) ApplyJourney(ctx context.Context, req *journeyv1.ApplyJourneyRequest) (*journeyv1.ApplyJourneyResponse, error) {
	name := filepath.Base(req.GetFileName())
	var v app.ValidationError
	if !fileNameRE.MatchString(name) {
		v.Fields = append(v.Fields, app.FieldError{Field: "file_name", Description: "required; a file name such as reminders.yaml (letters, digits, '.', '_' and '-')"})
	}
	if len(req.GetContent()) > maxJourneyFile {
		v.Fields = append(v.Fields, app.FieldError{Field: "content", Description: "at most 256 KiB"})
	}
	checkVersionMessage(&v, req.GetMessage())
	if len(v.Fields) > 0 {
		return nil, badRequest("invalid apply request", &v)
	}
	res, err := s.app.ApplyJourney(ctx, name, req.GetContent(), req.GetMessage())
	if err != nil {
		return nil, s.versionsError(ctx, err)
	}
	if len(res.Problems) > 0 {
		return nil, refused(res.Problems)
	}
	return &journeyv1.ApplyJourneyResponse{Journey: journeyProto(res.Journey, res.Version.Version), Version: versionProto(res.Version), Changed: res.Changed}, nil
}

// RollbackJourney applies an earlier version's file again.
func (s *Admin) RollbackJourney(ctx context.Context, req *journeyv1.RollbackJourneyRequest) (*journeyv1.RollbackJourneyResponse, error) {
	var v app.ValidationError
	checkJourneyID(&v, req.GetJourneyId())
	if req.GetToVersion() < 1 {
		v.Fields = append(v.Fields, app.FieldError{Field: "to_version", Description: "required; a version number from the journey's history (1 or more)"})
	}
	checkVersionMessage(&v, req.GetMessage())
	if len(v.Fields) > 0 {
		return nil, badRequest("invalid rollback request", &v)
	}
	res, err := s.app.RollbackJourney(ctx, req.GetJourneyId(), int(req.GetToVersion()), req.GetMessage())
	if err != nil {
		return nil, s.versionsError(ctx, err)
	}
	if len(res.Problems) > 0 {
		return nil, refused(res.Problems)
	}
	return &journeyv1.RollbackJourneyResponse{Journey: journeyProto(res.Journey, res.Version.Version), Version: versionProto(res.Version), Changed: res.Changed}, nil
}

// RemoveJourney stores a version that removes a journey.
func (s *Admin) RemoveJourney(ctx context.Context, req *journeyv1.RemoveJourneyRequest) (*journeyv1.RemoveJourneyResponse, error) {
	var v app.ValidationError
	checkJourneyID(&v, req.GetJourneyId())
	checkVersionMessage(&v, req.GetMessage())
	if len(v.Fields) > 0 {
		return nil, badRequest("invalid remove request", &v)
	}
	ver, err := s.app.RemoveJourney(ctx, req.GetJourneyId(), req.GetMessage())
	if err != nil {
		return nil, s.versionsError(ctx, err)
	}
	return &journeyv1.RemoveJourneyResponse{Version: versionProto(ver)}, nil
}

// GetJourneyHistory lists a journey's versions.
func (s *Admin) GetJourneyHistory(ctx context.Context, req *journeyv1.GetJourneyHistoryRequest) (*journeyv1.GetJourneyHistoryResponse, error) {
	var v app.ValidationError
	checkJourneyID(&v, req.GetJourneyId())
	if len(v.Fields) > 0 {
		return nil, badRequest("invalid history request", &v)
	}
	all, err := s.app.JourneyHistory(ctx, req.GetJourneyId())
	if err != nil {
		return nil, s.versionsError(ctx, err)
	}
	resp := &journeyv1.GetJourneyHistoryResponse{Versions: make([]*journeyv1.JourneyVersion, 0, len(all))}
	for _, ver := range all {
		resp.Versions = append(resp.Versions, versionProto(ver))
	}
	return resp, nil
}

func checkJourneyID(v *app.ValidationError, id string) {
	if !catalog.ValidID(id) {
		v.Fields = append(v.Fields, app.FieldError{Field: "journey_id", Description: "required; a journey id (lowercase letters, digits and '-', at most 64)"})
	}
}

func checkVersionMessage(v *app.ValidationError, msg string) {
	if len(msg) > maxVersionMessage {
		v.Fields = append(v.Fields, app.FieldError{Field: "message", Description: "at most 512 bytes"})
	}
}

// refused is the INVALID_ARGUMENT of a journey file with problems: a
// BadRequest (field "content", one violation per problem, "file:line:col:
// message") and the problems themselves.
func refused(problems []catalog.Problem) error {
	br := &errdetails.BadRequest{}
	jp := &journeyv1.JourneyProblems{}
	for _, p := range problems {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: "content", Description: p.String()})
		jp.Problems = append(jp.Problems, &journeyv1.JourneyProblem{File: p.File, Line: int32(p.Line), Column: int32(p.Column), Message: p.Message})
	}
	msg := fmt.Sprintf("journey file refused: %d problem(s); the running version keeps running", len(problems))
	st, _ := status.New(codes.InvalidArgument, msg).WithDetails(br, jp)
	return st.Err()
}

// versionsError maps an error of the versioned-journey calls to a gRPC
// status, the one place they do so.
func (s *Admin) versionsError(ctx context.Context, err error) error {
	var verr *app.ValidationError
	switch {
	case errors.As(err, &verr):
		return badRequest("invalid request", verr)
	case errors.Is(err, app.ErrNotFound):
		return status.Error(codes.NotFound, "the journey store has no such journey or version")
	case errors.Is(err, app.ErrNoJourneyStore):
		return status.Error(codes.FailedPrecondition, "this journey service has no versioned journey store")
	}
	s.logger.WarnContext(ctx, "journey store failed", "err", err)
	return status.Error(codes.Unavailable, "journey store unavailable; retry")
}

// journeyProto is the API form of a running journey.
func journeyProto(j *catalog.Journey, revision int) *journeyv1.Journey {
	p := listResponse([]*catalog.Journey{j}).GetJourneys()[0]
	p.Revision = int32(revision)
	return p
}

func versionProto(v app.JourneyVersion) *journeyv1.JourneyVersion {
	return &journeyv1.JourneyVersion{
		JourneyId: v.Journey, Version: int32(v.Version), Hash: v.Hash, Principal: v.Principal, AppliedAt: timestamppb.New(v.At),
		Message: v.Message, Removed: v.Removed, RestoredFrom: int32(v.RestoredFrom), File: v.File, Tenant: v.Tenant,
	}
}

// applyHTTP is POST /v1/journeys:apply: a JSON ApplyJourneyRequest
// (Content-Type application/json; content base64), or the YAML file
// itself with ?file=<name> (no message).
func (s *Admin) applyHTTP(w http.ResponseWriter, r *http.Request) {
	req := &journeyv1.ApplyJourneyRequest{}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 2*maxJourneyFile))
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && ct == "application/json" {
		err = protojson.Unmarshal(body, req)
	} else if err == nil {
		req.FileName, req.Content = r.URL.Query().Get("file"), body
	}
	if err != nil {
		writeJSON(w, nil, bodyError("body is not a journey file or JSON ApplyJourneyRequest", "the journey file (YAML, with ?file=<name>), or a JSON ApplyJourneyRequest, at most 256 KiB"))
		return
	}
	resp, err := s.ApplyJourney(r.Context(), req)
	writeJSON(w, resp, err)
}

func (s *Admin) historyHTTP(w http.ResponseWriter, r *http.Request) {
	resp, err := s.GetJourneyHistory(r.Context(), &journeyv1.GetJourneyHistoryRequest{JourneyId: r.PathValue("id")})
	writeJSON(w, resp, err)
}

// rollbackHTTP is POST /v1/journeys/{id}/rollback with {"toVersion": N,
// "message": "..."}.
func (s *Admin) rollbackHTTP(w http.ResponseWriter, r *http.Request) {
	req := &journeyv1.RollbackJourneyRequest{}
	if !decodeBody(w, r, req, `a JSON object such as {"toVersion": 3, "message": "..."}`) {
		return
	}
	req.JourneyId = r.PathValue("id")
	resp, err := s.RollbackJourney(r.Context(), req)
	writeJSON(w, resp, err)
}

// removeHTTP is POST /v1/journeys/{id}/remove with {"message": "..."}
// (or no body).
func (s *Admin) removeHTTP(w http.ResponseWriter, r *http.Request) {
	req := &journeyv1.RemoveJourneyRequest{}
	if !decodeBody(w, r, req, `a JSON object such as {"message": "..."}, or nothing`) {
		return
	}
	req.JourneyId = r.PathValue("id")
	resp, err := s.RemoveJourney(r.Context(), req)
	writeJSON(w, resp, err)
}

// decodeBody reads a JSON request body (empty is an empty request) into
// m, or answers a 400 saying what the body should be.
func decodeBody(w http.ResponseWriter, r *http.Request, m proto.Message, want string) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil && len(body) > 0 {
		err = protojson.Unmarshal(body, m)
	}
	if err != nil {
		// The decoder's message may quote the body: don't echo it.
		writeJSON(w, nil, bodyError("body is not the JSON this call takes", want))
		return false
	}
	return true
}

func bodyError(msg, want string) error {
	return badRequest(msg, &app.ValidationError{Fields: []app.FieldError{{Field: "body", Description: want}}})
}
