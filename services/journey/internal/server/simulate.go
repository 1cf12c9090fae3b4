package server

import (
	"context"
	"io"
	"net/http"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
)

// maxSimEvents bounds the events of one Simulate call.
const maxSimEvents = 1000

// Simulate says what the events would do, changing nothing.
func (s *Admin) Simulate(_ context.Context, req *journeyv1.SimulateRequest) (*journeyv1.SimulateResponse, error) {
	if n := len(req.GetEvents()); n == 0 || n > maxSimEvents {
		st, _ := status.New(codes.InvalidArgument, "invalid simulate request").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "events", Description: "1 to 1000 ClinicalEvents"}},
		})
		return nil, st.Err()
	}
	at := time.Now()
	if req.GetAt() != nil {
		at = req.GetAt().AsTime()
	}
	resp := &journeyv1.SimulateResponse{}
	for _, se := range s.app.Simulate(req.GetEvents(), at) {
		pe := &journeyv1.SimulatedEvent{EventId: se.EventID, Event: se.Event}
		for _, sj := range se.Journeys {
			pj := &journeyv1.SimulatedJourney{Journey: sj.Journey, Started: sj.Started, Outcome: sj.Outcome}
			for _, m := range sj.Messages {
				pj.Messages = append(pj.Messages, &journeyv1.SimulatedMessage{
					Step: m.Step, Channel: m.Channel, Template: m.Template, SendAt: timestamppb.New(m.At), Note: m.Note,
				})
			}
			pe.Journeys = append(pe.Journeys, pj)
		}
		resp.Events = append(resp.Events, pe)
	}
	return resp, nil
}

// maxSimBody bounds a POST /v1/journeys:simulate body.
const maxSimBody = 4 << 20

func (s *Admin) simulateHTTP(w http.ResponseWriter, r *http.Request) {
	var req journeyv1.SimulateRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSimBody))
	if err == nil {
		err = protojson.Unmarshal(body, &req)
	}
	if err != nil {
		// The decoder's message may quote the body (PHI): don't echo it.
		st, _ := status.New(codes.InvalidArgument, "body is not a JSON SimulateRequest").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "body", Description: `{"events": [ClinicalEvent as proto JSON, ...], "at": "2026-12-03T09:00:00Z"}, at most 4 MiB`}},
		})
		writeJSON(w, nil, st.Err())
		return
	}
	resp, err := s.Simulate(r.Context(), &req)
	writeJSON(w, resp, err)
}
