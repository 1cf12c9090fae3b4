package server

import (
	"io"
	"net/http"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	journeyv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/journey/v1"
)

// RegisterHTTP adds the HTTP/JSON admin API to mux: GET /v1/journeys
// (optionally ?tenant=...) answers the same JSON as ListJourneys
// (protojson, lowerCamelCase field names); GET and PUT
// /v1/consent/{tenant}/{patient}/{channel}/{purpose} are GetConsent and
// SetConsent (PUT body: {"state", "source", "evidenceRef"}); POST
// /v1/trace (body: a JSON TraceRequest) is Trace; POST
// /v1/journeys:validate?file=<name> (body: the YAML file) is
// ValidateJourney; POST /v1/journeys:apply (the YAML file with
// ?file=<name>, or a JSON ApplyJourneyRequest) is ApplyJourney; GET
// /v1/journeys/{id}/history, POST /v1/journeys/{id}/rollback (body
// {"toVersion", "message"}) and POST /v1/journeys/{id}/remove (body
// {"message"} or none) are GetJourneyHistory, RollbackJourney and
// RemoveJourney.
//
// Every route needs a bearer token allowed to call the matching
// AdminService method (see auth.go).
func (s *Admin) RegisterHTTP(mux *http.ServeMux, auth *Auth) {
	mux.HandleFunc("GET /v1/journeys", auth.HTTP("ListJourneys", s.listJourneysHTTP))
	mux.HandleFunc("GET /v1/consent/{tenant}/{patient}/{channel}/{purpose}", auth.HTTP("GetConsent", s.getConsentHTTP))
	mux.HandleFunc("PUT /v1/consent/{tenant}/{patient}/{channel}/{purpose}", auth.HTTP("SetConsent", s.setConsentHTTP))
	mux.HandleFunc("POST /v1/consent:rebuild", auth.HTTP("RebuildConsent", s.rebuildConsentHTTP))
	mux.HandleFunc("POST /v1/trace", auth.HTTP("Trace", s.traceHTTP))
	mux.HandleFunc("POST /v1/journeys:validate", auth.HTTP("ValidateJourney", s.validateHTTP))
	mux.HandleFunc("POST /v1/journeys:simulate", auth.HTTP("Simulate", s.simulateHTTP))
	mux.HandleFunc("POST /v1/journeys:apply", auth.HTTP("ApplyJourney", s.applyHTTP))
	mux.HandleFunc("GET /v1/journeys/{id}/history", auth.HTTP("GetJourneyHistory", s.historyHTTP))
	mux.HandleFunc("POST /v1/journeys/{id}/rollback", auth.HTTP("RollbackJourney", s.rollbackHTTP))
	mux.HandleFunc("POST /v1/journeys/{id}/remove", auth.HTTP("RemoveJourney", s.removeHTTP))
}

func (s *Admin) getConsentHTTP(w http.ResponseWriter, r *http.Request) {
	resp, err := s.GetConsent(r.Context(), &journeyv1.GetConsentRequest{
		Tenant: r.PathValue("tenant"), PatientId: r.PathValue("patient"), Channel: r.PathValue("channel"), Purpose: r.PathValue("purpose"),
	})
	writeJSON(w, resp, err)
}

// maxBody bounds a PUT body.
const maxBody = 16 << 10

func (s *Admin) setConsentHTTP(w http.ResponseWriter, r *http.Request) {
	var req journeyv1.SetConsentRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil {
		err = protojson.Unmarshal(body, &req)
	}
	if err != nil {
		// The decoder's message may quote the body: don't echo it.
		st, _ := status.New(codes.InvalidArgument, "body is not a JSON SetConsentRequest").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "body", Description: `a JSON object such as {"state": "denied", "source": "admin", "evidenceRef": "..."}`}},
		})
		writeJSON(w, nil, st.Err())
		return
	}
	req.Tenant, req.PatientId, req.Channel, req.Purpose = r.PathValue("tenant"), r.PathValue("patient"), r.PathValue("channel"), r.PathValue("purpose")
	resp, err := s.SetConsent(r.Context(), &req)
	writeJSON(w, resp, err)
}

// writeJSON writes resp as protojson, or err (a gRPC status) as its JSON
// form (code, message, details) with the matching HTTP status.
func writeJSON(w http.ResponseWriter, resp proto.Message, err error) {
	code := http.StatusOK
	var msg proto.Message = resp
	if err != nil {
		st := status.Convert(err)
		code, msg = httpStatus(st.Code()), st.Proto()
	}
	b, merr := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(msg)
	if merr != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// httpStatus maps a gRPC code to an HTTP status, the one place the
// HTTP/JSON API does so.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument, codes.FailedPrecondition:
		return http.StatusBadRequest
	case codes.NotFound:
		return http.StatusNotFound
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

func (s *Admin) listJourneysHTTP(w http.ResponseWriter, r *http.Request) {
	tenant := r.URL.Query().Get("tenant")
	if tenant != "" && !validTenant(tenant) {
		http.Error(w, "tenant may only use letters, digits, '_' and '-'", http.StatusBadRequest)
		return
	}
	b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(listResponse(s.app.Journeys(tenant)))
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}

func (s *Admin) validateHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJourneyFile))
	if err != nil {
		st, _ := status.New(codes.InvalidArgument, "body is not a journey file").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "content", Description: "the journey file (YAML), at most 256 KiB"}},
		})
		writeJSON(w, nil, st.Err())
		return
	}
	resp, err := s.ValidateJourney(r.Context(), &journeyv1.ValidateJourneyRequest{FileName: r.URL.Query().Get("file"), Content: body})
	writeJSON(w, resp, err)
}
