package server_test

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/carenotify/carenotify/services/ingest/internal/config"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify/fhirnotifytest"
	"github.com/carenotify/carenotify/services/ingest/internal/server"
	"github.com/carenotify/carenotify/services/ingest/internal/testca"
)

// mtlsSources are the test sources plus three bound to certificates.
var mtlsSources = append(append(config.Sources{}, sources...),
	config.Source{Name: "mirth", Tenant: "north", Auth: config.AuthMTLS, MTLS: config.MTLS{DNS: "mirth.hospital.example"}},
	config.Source{Name: "pacs", Tenant: "north", Auth: config.AuthMTLS, MTLS: config.MTLS{URI: "spiffe://hospital.example/pacs"}},
	config.Source{Name: "legacy", Tenant: "south", Auth: config.AuthMTLS, MTLS: config.MTLS{CN: "legacy-engine"}})

func TestMTLS(t *testing.T) {
	ca := testca.New(t, "hospital test CA")
	other := testca.New(t, "someone else's CA")
	// The server asks for a certificate but does not require one, as the
	// service configures it: bearer sources connect without.
	e := newEnvTLS(t, func(o *server.Options) { o.Sources = mtlsSources },
		&tls.Config{Certificates: []tls.Certificate{ca.Server(t)}, ClientCAs: ca.Pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12})
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, Certificates: certs, MinVersion: tls.VersionTLS12}}}
	}
	mirth := ca.Client(t, testca.Identity{DNS: "mirth.hospital.example", CN: "Mirth Connect"})
	body := fhirnotifytest.AppointmentNotification(t, fhirnotifytest.BookedOptions)
	tests := []struct {
		name, source string
		client       *http.Client
		token        string
		wantStatus   int
		wantDiag     string
	}{
		{name: "san dns", source: "mirth", client: client(mirth), wantStatus: 200, wantDiag: "accepted 1 event(s)"},
		{name: "san uri", source: "pacs", client: client(ca.Client(t, testca.Identity{URI: "spiffe://hospital.example/pacs"})), wantStatus: 200},
		{name: "subject cn", source: "legacy", client: client(ca.Client(t, testca.Identity{CN: "legacy-engine"})), wantStatus: 200},
		{name: "dns is case-insensitive", source: "mirth", client: client(ca.Client(t, testca.Identity{DNS: "MIRTH.hospital.example"})), wantStatus: 200},
		{name: "another source's certificate", source: "pacs", client: client(mirth), wantStatus: 401, wantDiag: "not the one configured for this source"},
		{name: "cn is not a san", source: "mirth", client: client(ca.Client(t, testca.Identity{CN: "mirth.hospital.example"})), wantStatus: 401, wantDiag: "not the one configured"},
		{name: "no certificate", source: "mirth", client: client(), wantStatus: 401, wantDiag: "authenticates with a TLS client certificate"},
		{name: "bearer token is no certificate", source: "mirth", client: client(), token: "epic-token", wantStatus: 401, wantDiag: "authenticates with a TLS client certificate"},
		{name: "bearer source over TLS without a certificate", source: "demo", client: client(), token: "demo-token", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.post(t, request{source: tt.source, token: tt.token, contentType: "application/fhir+json", body: body, client: tt.client})
			is := got.outcome.Issue[0]
			if got.status != tt.wantStatus || !strings.Contains(is.Diagnostics, tt.wantDiag) {
				t.Fatalf("answer = %d %q, want %d %q", got.status, is.Diagnostics, tt.wantStatus, tt.wantDiag)
			}
			if got.status == 401 && (is.Code != "security" || got.header.Get("WWW-Authenticate") != "Carenotify-mTLS") {
				t.Errorf("401 code %q WWW-Authenticate %q, want security / Carenotify-mTLS", is.Code, got.header.Get("WWW-Authenticate"))
			}
		})
	}

	// A certificate of another CA fails the handshake: nothing is read.
	// (Go's client would not even send it, since the server names its CA;
	// a client that sends it anyway is refused.)
	wrong := other.Client(t, testca.Identity{DNS: "mirth.hospital.example"})
	forced := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &wrong, nil }}}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/fhir/mirth/notifications", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	if resp, err := forced.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("certificate of another CA: answered %d, want a handshake failure", resp.StatusCode)
	}

	// Sent the usual way, it is not sent at all: no certificate.
	if got := e.post(t, request{source: "mirth", contentType: "application/fhir+json", body: body, client: client(wrong)}); got.status != 401 ||
		!strings.Contains(got.outcome.Issue[0].Diagnostics, "authenticates with a TLS client certificate") {
		t.Errorf("certificate of another CA, not sent = %d %+v, want 401 no certificate", got.status, got.outcome)
	}

	// Events of each accepted source carry its name and tenant (a logical
	// id is scoped to its source, so each source's first sight is new).
	var srcs []string
	for _, m := range e.messages(t, "EHR_EVENTS") {
		srcs = append(srcs, m.Header.Get("Cn-Tenant")+"/"+m.Header.Get("Cn-Source"))
	}
	if got, want := strings.Join(srcs, ","), "north/mirth,north/pacs,south/legacy,demo/demo"; got != want {
		t.Errorf("events by tenant/source = %s, want %s", got, want)
	}
	if strings.Contains(e.logs.String(), "mirth.hospital.example") || strings.Contains(e.logs.String(), "Chalmers") {
		t.Error("logs hold a certificate name or PHI")
	}
}
