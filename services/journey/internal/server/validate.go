package server

import (
	"context"
	"path/filepath"
	"regexp"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// maxJourneyFile bounds a journey file sent to ValidateJourney.
const maxJourneyFile = 256 << 10

var fileNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// ValidateJourney checks one journey file against the loaded templates.
func (s *Admin) ValidateJourney(_ context.Context, req *journeyv1.ValidateJourneyRequest) (*journeyv1.ValidateJourneyResponse, error) {
	name := filepath.Base(req.GetFileName())
	var v app.ValidationError
	if !fileNameRE.MatchString(name) {
		v.Fields = append(v.Fields, app.FieldError{Field: "file_name", Description: "required; a file name such as reminders.yaml (letters, digits, '.', '_' and '-')"})
	}
	if len(req.GetContent()) > maxJourneyFile {
		v.Fields = append(v.Fields, app.FieldError{Field: "content", Description: "at most 256 KiB"})
	}
	if len(v.Fields) > 0 {
		return nil, badRequest("invalid validate request", &v)
	}
	j, problems := s.app.CheckJourney(name, req.GetContent())
	resp := &journeyv1.ValidateJourneyResponse{Valid: len(problems) == 0}
	for _, p := range problems {
		resp.Problems = append(resp.Problems, &journeyv1.JourneyProblem{File: p.File, Line: int32(p.Line), Column: int32(p.Column), Message: p.Message})
	}
	if j != nil {
		resp.Journey = listResponse([]*catalog.Journey{j}).GetJourneys()[0]
	}
	if resp.Valid && resp.Journey == nil {
		return nil, status.Error(codes.Internal, "internal error")
	}
	return resp, nil
}
