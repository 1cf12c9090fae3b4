package server

import (
	"context"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// Admin serves carenotify.journey.v1.AdminService.
type Admin struct {
	journeyv1.UnimplementedAdminServiceServer
	app    *app.Service
	logger *slog.Logger
}

var _ journeyv1.AdminServiceServer = (*Admin)(nil)

// NewAdmin returns the admin API over a.
func NewAdmin(a *app.Service, logger *slog.Logger) *Admin { return &Admin{app: a, logger: logger} }

// ListJourneys returns the loaded journeys that run for the tenant (every
// journey when the tenant is empty), ordered by id.
func (s *Admin) ListJourneys(_ context.Context, req *journeyv1.ListJourneysRequest) (*journeyv1.ListJourneysResponse, error) {
	if t := req.GetTenant(); t != "" && !validTenant(t) {
		return nil, status.Error(codes.InvalidArgument, "tenant may only use letters, digits, '_' and '-'")
	}
	return listResponse(s.app.Journeys(req.GetTenant())), nil
}

// listResponse converts journeys to their API form.
func listResponse(js []*catalog.Journey) *journeyv1.ListJourneysResponse {
	resp := &journeyv1.ListJourneysResponse{Journeys: make([]*journeyv1.Journey, 0, len(js))}
	for _, j := range js {
		resp.Journeys = append(resp.Journeys, &journeyv1.Journey{
			Id:       j.ID,
			Version:  j.Version,
			Trigger:  j.Trigger,
			Purpose:  string(j.Purpose),
			File:     j.File,
			Steps:    int32(len(j.Steps)),
			Revision: int32(j.Revision),
		})
	}
	return resp
}

// validTenant reports whether t can be a tenant (a NATS subject token).
func validTenant(t string) bool {
	if len(t) > 64 {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
