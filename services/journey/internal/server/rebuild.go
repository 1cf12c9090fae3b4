package server

import (
	"context"
	"io"
	"net/http"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
)

// RebuildConsent rewrites the tenant's consent records from the CONSENT
// stream and says what it did.
func (s *Admin) RebuildConsent(ctx context.Context, req *journeyv1.RebuildConsentRequest) (*journeyv1.RebuildConsentResponse, error) {
	res, err := s.app.RebuildConsent(ctx, req.GetTenant())
	if err != nil {
		return nil, s.grpcError(ctx, err)
	}
	return &journeyv1.RebuildConsentResponse{Changes: int64(res.Changes), Records: int64(res.Records), Refused: int64(res.Refused)}, nil
}

// rebuildConsentHTTP is POST /v1/consent:rebuild with a JSON
// RebuildConsentRequest ({"tenant": "demo"}).
func (s *Admin) rebuildConsentHTTP(w http.ResponseWriter, r *http.Request) {
	var req journeyv1.RebuildConsentRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil {
		err = protojson.Unmarshal(body, &req)
	}
	if err != nil {
		st, _ := status.New(codes.InvalidArgument, "body is not a JSON RebuildConsentRequest").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "body", Description: `a JSON object such as {"tenant": "demo"}`}},
		})
		writeJSON(w, nil, st.Err())
		return
	}
	resp, err := s.RebuildConsent(r.Context(), &req)
	writeJSON(w, resp, err)
}
