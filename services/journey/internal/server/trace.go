package server

import (
	"context"
	"errors"
	"io"
	"net/http"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
)

// Trace returns every decision about one patient, oldest first.
func (s *Admin) Trace(ctx context.Context, req *journeyv1.TraceRequest) (*journeyv1.TraceResponse, error) {
	q := app.TraceQuery{
		Tenant: req.GetTenant(), Patient: req.GetPatientId(), PatientRef: req.GetPatientRef(), MessageID: req.GetMessageId(),
	}
	if req.GetSince() != nil {
		q.Since = req.GetSince().AsTime()
	}
	if req.GetUntil() != nil {
		q.Until = req.GetUntil().AsTime()
	}
	tr, err := s.app.Trace(ctx, q)
	var verr *app.ValidationError
	switch {
	case errors.As(err, &verr):
		return nil, badRequest("invalid trace request", verr)
	case errors.Is(err, app.ErrTraceNotFound):
		return nil, status.Error(codes.NotFound, "no message with this id was sent by journey in this tenant")
	case err != nil:
		s.logger.WarnContext(ctx, "trace failed", "err", err)
		return nil, status.Error(codes.Unavailable, "audit trail unavailable; retry")
	}
	resp := &journeyv1.TraceResponse{PatientRef: tr.PatientRef, Entries: make([]*journeyv1.TraceEntry, 0, len(tr.Entries))}
	for _, e := range tr.Entries {
		resp.Entries = append(resp.Entries, &journeyv1.TraceEntry{
			Time: timestamppb.New(e.Time), Service: e.Service, Actor: e.Actor.Type + ":" + e.Actor.ID,
			Action: e.Action, ObjectType: e.Object.Type, ObjectId: e.Object.ID, Outcome: e.Outcome,
			Reason: e.Reason, Purpose: e.Purpose, EventId: e.EventID, Detail: e.Detail, Summary: e.Summary,
		})
	}
	return resp, nil
}

// badRequest is INVALID_ARGUMENT with a google.rpc.BadRequest naming the
// fields at fault, never their values.
func badRequest(msg string, verr *app.ValidationError) error {
	br := &errdetails.BadRequest{}
	for _, f := range verr.Fields {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: f.Field, Description: f.Description})
	}
	st, _ := status.New(codes.InvalidArgument, msg).WithDetails(br)
	return st.Err()
}

// traceHTTP is POST /v1/trace with a JSON TraceRequest: the patient id is
// PHI, so it goes in the body, never in the URL.
func (s *Admin) traceHTTP(w http.ResponseWriter, r *http.Request) {
	var req journeyv1.TraceRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil {
		err = protojson.Unmarshal(body, &req)
	}
	if err != nil {
		writeJSON(w, nil, badRequest("body is not a JSON TraceRequest", &app.ValidationError{Fields: []app.FieldError{
			{Field: "body", Description: `a JSON object such as {"tenant": "demo", "patientId": "..."} or {"tenant": "demo", "messageId": "..."}`},
		}}))
		return
	}
	resp, err := s.Trace(r.Context(), &req)
	writeJSON(w, resp, err)
}
