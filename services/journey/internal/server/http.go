package server

import (
	"net/http"

	"google.golang.org/protobuf/encoding/protojson"
)

// RegisterHTTP adds the HTTP/JSON admin API to mux: GET /v1/journeys
// (optionally ?tenant=...) answers the same JSON as ListJourneys
// (protojson, lowerCamelCase field names).
func (s *Admin) RegisterHTTP(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/journeys", s.listJourneysHTTP)
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
