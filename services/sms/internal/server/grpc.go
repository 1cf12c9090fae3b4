// Package server is the sms service's transport layer: the gRPC
// SmsService and the provider's webhooks. It decodes requests, calls the
// app and maps its errors, in one place per transport.
package server

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	smsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/sms/v1"
	"github.com/carenotify/carenotify/services/sms/internal/app"
)

// SMS serves carenotify.sms.v1.SmsService.
type SMS struct {
	smsv1.UnimplementedSmsServiceServer
	app    *app.Service
	logger *slog.Logger
}

var _ smsv1.SmsServiceServer = (*SMS)(nil)

// New returns the gRPC server for a.
func New(a *app.Service, logger *slog.Logger) *SMS {
	return &SMS{app: a, logger: logger}
}

// Send implements SmsServiceServer.
func (s *SMS) Send(ctx context.Context, req *smsv1.SendRequest) (*smsv1.SendResponse, error) {
	in := app.SendRequest{
		Tenant: req.GetTenant(), IdempotencyKey: req.GetIdempotencyKey(),
		To: req.GetTo(), Body: req.GetBody(),
		JourneyInstance: req.GetJourneyInstance(), Step: req.GetStep(),
	}
	if req.GetExpiresAt() != nil {
		in.ExpiresAt = req.GetExpiresAt().AsTime()
	}
	res, err := s.app.Send(ctx, in)
	if err != nil {
		return nil, s.toStatus("Send", err)
	}
	return &smsv1.SendResponse{
		MessageId: res.MessageID, Duplicate: res.Duplicate, Status: res.Status.Proto(),
		Segments: int32(res.Segments), Encoding: string(res.Encoding),
	}, nil
}

// GetStatus implements SmsServiceServer.
func (s *SMS) GetStatus(ctx context.Context, req *smsv1.GetStatusRequest) (*smsv1.GetStatusResponse, error) {
	rec, err := s.app.GetStatus(ctx, req.GetTenant(), req.GetMessageId())
	if err != nil {
		return nil, s.toStatus("GetStatus", err)
	}
	return &smsv1.GetStatusResponse{
		MessageId: rec.ID, Status: rec.Status.Proto(), Attempts: int32(rec.Attempts), Reason: rec.Reason,
		UpdatedAt: timestamppb.New(rec.UpdatedAt), ProviderMessageId: rec.ProviderID, Segments: int32(rec.Segments),
	}, nil
}

// toStatus maps an app error to a gRPC status. It is the only place that
// does. App errors carry no PHI, so their text may be returned and logged.
func (s *SMS) toStatus(method string, err error) error {
	var ve *app.ValidationError
	switch {
	case errors.As(err, &ve):
		br := &errdetails.BadRequest{}
		for _, v := range ve.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field: v.Field, Description: v.Description,
			})
		}
		st := status.New(codes.InvalidArgument, ve.Error())
		if withDetails, derr := st.WithDetails(br); derr == nil {
			st = withDetails
		}
		return st.Err()
	case errors.Is(err, app.ErrNotFound):
		return status.Error(codes.NotFound, "message not found")
	case errors.Is(err, app.ErrInProgress):
		return status.Error(codes.Unavailable, err.Error()+"; retry with the same idempotency key")
	case errors.Is(err, app.ErrUnavailable):
		s.logger.Warn("request failed", "method", method, "err", err)
		return status.Error(codes.Unavailable, "sms outbox unavailable; nothing was stored, retry with the same idempotency key")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled")
	}
	s.logger.Error("request failed", "method", method, "err", err)
	return status.Error(codes.Internal, "internal error")
}
