package server

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carenotify/carenotify/services/email/internal/app"
)

// ErrorDomain and ErrorReasonSuppressed are the google.rpc.ErrorInfo of a
// Send refused because the recipient is suppressed; its metadata
// "suppression" says why (hard_bounce, complaint).
const (
	ErrorDomain           = "email.carenotify"
	ErrorReasonSuppressed = "suppressed"
)

// toStatus maps an app error to a gRPC status. It is the only place that
// does. App errors carry no PHI, so their text may be returned and logged.
func (s *Email) toStatus(method string, err error) error {
	var ve *app.ValidationError
	var se *app.SuppressedError
	switch {
	case errors.As(err, &se):
		st := status.New(codes.FailedPrecondition, se.Error())
		info := &errdetails.ErrorInfo{
			Reason: ErrorReasonSuppressed, Domain: ErrorDomain,
			Metadata: map[string]string{"suppression": string(se.Reason)},
		}
		if withDetails, derr := st.WithDetails(info); derr == nil {
			st = withDetails
		}
		return st.Err()
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
		return status.Error(codes.Unavailable, "email outbox unavailable; nothing was stored, retry with the same idempotency key")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled")
	}
	s.logger.Error("request failed", "method", method, "err", err)
	return status.Error(codes.Internal, "internal error")
}
