package server

import (
	"context"
	"log/slog"

	"google.golang.org/protobuf/types/known/timestamppb"

	emailv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/email/v1"
	"github.com/carenotify/carenotify/services/email/internal/app"
)

// Email serves carenotify.email.v1.EmailService.
type Email struct {
	emailv1.UnimplementedEmailServiceServer
	app    *app.Service
	logger *slog.Logger
}

var _ emailv1.EmailServiceServer = (*Email)(nil)

// New returns the gRPC server for a.
func New(a *app.Service, logger *slog.Logger) *Email {
	return &Email{app: a, logger: logger}
}

// Send implements EmailServiceServer.
func (s *Email) Send(ctx context.Context, req *emailv1.SendRequest) (*emailv1.SendResponse, error) {
	in := app.SendRequest{
		Tenant:          req.GetTenant(),
		IdempotencyKey:  req.GetIdempotencyKey(),
		To:              req.GetTo(),
		Subject:         req.GetSubject(),
		HTMLBody:        req.GetHtmlBody(),
		TextBody:        req.GetTextBody(),
		Security:        app.Security(req.GetSecurity()),
		Purpose:         app.Purpose(req.GetPurpose()),
		JourneyInstance: req.GetJourneyInstance(),
		Step:            req.GetStep(),
	}
	if req.GetExpiresAt() != nil {
		in.ExpiresAt = req.GetExpiresAt().AsTime()
	}
	res, err := s.app.Send(ctx, in)
	if err != nil {
		return nil, s.toStatus("Send", err)
	}
	return &emailv1.SendResponse{
		MessageId: res.MessageID,
		Duplicate: res.Duplicate,
		Status:    res.Status.Proto(),
	}, nil
}

// GetStatus implements EmailServiceServer.
func (s *Email) GetStatus(ctx context.Context, req *emailv1.GetStatusRequest) (*emailv1.GetStatusResponse, error) {
	rec, err := s.app.GetStatus(ctx, req.GetTenant(), req.GetMessageId())
	if err != nil {
		return nil, s.toStatus("GetStatus", err)
	}
	resp := &emailv1.GetStatusResponse{
		MessageId: rec.ID,
		Status:    rec.Status.Proto(),
		Attempts:  int32(rec.Attempts),
		Reason:    rec.Reason,
		UpdatedAt: timestamppb.New(rec.UpdatedAt),
	}
	resp.Transport = rec.Transport.Proto()
	return resp, nil
}
