package server

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// GetConsent returns one consent record; NOT_FOUND when there is none.
func (s *Admin) GetConsent(ctx context.Context, req *journeyv1.GetConsentRequest) (*journeyv1.GetConsentResponse, error) {
	c, err := s.app.Consent(ctx, app.ConsentKey{
		Tenant: req.GetTenant(), Patient: req.GetPatientId(), Channel: req.GetChannel(), Purpose: catalog.Purpose(req.GetPurpose()),
	})
	if err != nil {
		return nil, s.grpcError(ctx, err)
	}
	return &journeyv1.GetConsentResponse{Consent: consentProto(c)}, nil
}

// SetConsent records a consent decision and returns it as stored.
func (s *Admin) SetConsent(ctx context.Context, req *journeyv1.SetConsentRequest) (*journeyv1.SetConsentResponse, error) {
	c, err := s.app.SetConsent(ctx, app.Consent{
		Tenant: req.GetTenant(), Patient: req.GetPatientId(), Channel: req.GetChannel(), Purpose: catalog.Purpose(req.GetPurpose()),
		State: app.ConsentState(req.GetState()), Source: app.ConsentSource(req.GetSource()), EvidenceRef: req.GetEvidenceRef(),
	})
	if err != nil {
		return nil, s.grpcError(ctx, err)
	}
	return &journeyv1.SetConsentResponse{Consent: consentProto(c)}, nil
}

func consentProto(c app.Consent) *journeyv1.Consent {
	return &journeyv1.Consent{
		Tenant: c.Tenant, PatientId: c.Patient, Channel: c.Channel, Purpose: string(c.Purpose),
		State: string(c.State), Source: string(c.Source), ChangedAt: timestamppb.New(c.Time), EvidenceRef: c.EvidenceRef,
	}
}

// grpcError maps an app error to a gRPC status, the one place the admin
// API does so. Messages carry no request values; an unexpected error is
// logged (its text holds no PHI) and answered as UNAVAILABLE, since it is
// the store that could not answer.
func (s *Admin) grpcError(ctx context.Context, err error) error {
	var verr *app.ValidationError
	switch {
	case errors.As(err, &verr):
		return badRequest("invalid consent request", verr)
	case errors.Is(err, app.ErrNotFound):
		return status.Error(codes.NotFound, "no consent record for this patient, channel and purpose")
	}
	s.logger.WarnContext(ctx, "consent store failed", "err", err)
	return status.Error(codes.Unavailable, "consent store unavailable; retry")
}
