package mllp_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/carenotify/carenotify/pkg/hl7/hl7test"
	hl7mllp "github.com/carenotify/carenotify/pkg/hl7/mllp"
	"github.com/carenotify/carenotify/pkg/log"
	"github.com/carenotify/carenotify/pkg/log/logtest"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
	"github.com/carenotify/carenotify/services/ingest/internal/mllp"
	"github.com/carenotify/carenotify/services/ingest/internal/testca"
)

// recording accepts every message and remembers the source it came from.
type recording struct {
	accepting
	mu      sync.Mutex
	sources []app.Source
}

func (r *recording) IngestHL7(ctx context.Context, src app.Source, raw []byte) (app.HL7Result, error) {
	r.mu.Lock()
	r.sources = append(r.sources, src)
	r.mu.Unlock()
	return r.accepting.IngestHL7(ctx, src, raw)
}

// TestMTLSSourceByCertificate: one listener serves several sources, each
// connection's source named by its client certificate.
func TestMTLSSourceByCertificate(t *testing.T) {
	ca := testca.New(t, "hospital test CA")
	other := testca.New(t, "someone else's CA")
	srcs := []config.Source{
		{Name: "mirth", Tenant: "north", Auth: config.AuthMTLS, MTLS: config.MTLS{DNS: "mirth.hospital.example"}},
		{Name: "lab", Tenant: "south", Auth: config.AuthMTLS, MTLS: config.MTLS{CN: "lab-engine"}},
	}
	rec := &recording{}
	logs := &logtest.Buffer{}
	reg := prometheus.NewRegistry()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := mllp.New(mllp.Options{App: rec, MaxFrameBytes: maxFrame, ReadTimeout: 5 * time.Second, MaxConns: 4,
		TLS: &tls.Config{Certificates: []tls.Certificate{ca.Server(t)}, ClientCAs: ca.Pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
		Identify: func(c *x509.Certificate) (app.Source, bool) {
			for _, s := range srcs {
				if s.MTLS.Matches(c) {
					return app.Source{Name: s.Name, Tenant: s.Tenant}, true
				}
			}
			return app.Source{}, false
		},
		Metrics: mllp.NewMetrics(reg), Logger: log.New(logs, 0, "ingest")})
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })

	msg := hl7test.Read(t, "ADT_A04/msconv-ADT04-251.hl7")
	// send dials with cfg, sends msg and returns the ACK's MSA-1, or the error.
	send := func(cfg *tls.Config) (string, error) {
		cfg.RootCAs, cfg.MinVersion = ca.Pool, tls.VersionTLS12
		conn, err := tls.Dial("tcp", l.Addr().String(), cfg)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if err := hl7mllp.WriteFrame(conn, msg); err != nil {
			return "", err
		}
		raw, err := hl7mllp.NewReader(conn, maxFrame).ReadFrame()
		if err != nil {
			return "", err
		}
		return parseACK(t, raw).Get("MSA-1"), nil
	}
	withCert := func(c tls.Certificate) *tls.Config {
		// GetClientCertificate sends the certificate even when the server
		// names another CA.
		return &tls.Config{GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }}
	}

	for _, tc := range []struct {
		name string
		cert tls.Certificate
	}{
		{name: "mirth by SAN DNS", cert: ca.Client(t, testca.Identity{DNS: "mirth.hospital.example"})},
		{name: "lab by CN", cert: ca.Client(t, testca.Identity{CN: "lab-engine"})},
	} {
		if ack, err := send(withCert(tc.cert)); err != nil || ack != "AA" {
			t.Errorf("%s: ACK %q, %v; want AA", tc.name, ack, err)
		}
	}
	want := []app.Source{{Name: "mirth", Tenant: "north"}, {Name: "lab", Tenant: "south"}}
	rec.mu.Lock()
	got := append([]app.Source(nil), rec.sources...)
	rec.mu.Unlock()
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("messages came from %+v, want %+v", got, want)
	}

	// Refusals: no message is read, no ACK sent.
	for _, tc := range []struct {
		name, reason string
		cfg          *tls.Config
	}{
		{name: "valid certificate naming no source", reason: "mtls_wrong_identity", cfg: withCert(ca.Client(t, testca.Identity{CN: "stranger", DNS: "stranger.example"}))},
		{name: "certificate of another CA", reason: "mtls_handshake", cfg: withCert(other.Client(t, testca.Identity{DNS: "mirth.hospital.example"}))},
		{name: "no certificate", reason: "mtls_handshake", cfg: &tls.Config{}},
	} {
		ack, err := send(tc.cfg)
		if err == nil {
			t.Errorf("%s: answered %q, want the connection refused", tc.name, ack)
		}
	}
	rec.mu.Lock()
	n := len(rec.sources)
	rec.mu.Unlock()
	if n != 2 {
		t.Errorf("%d messages ingested, want 2 (refused connections must not reach the app)", n)
	}
	// The server counts each refusal; a handshake refusal may be counted
	// just after the client saw its alert, so wait for the counts.
	expected := `
# HELP ingest_mllp_connections_refused_total MLLP connections closed before any message because the client certificate named no source, by reason (mtls_handshake, mtls_no_certificate, mtls_wrong_identity).
# TYPE ingest_mllp_connections_refused_total counter
ingest_mllp_connections_refused_total{reason="mtls_handshake"} 2
ingest_mllp_connections_refused_total{reason="mtls_wrong_identity"} 1
`
	var cmpErr error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cmpErr = testutil.GatherAndCompare(reg, strings.NewReader(expected), "ingest_mllp_connections_refused_total"); cmpErr == nil {
			break
		}
	}
	if cmpErr != nil {
		t.Error(cmpErr)
	}
	if strings.Contains(logs.String(), "stranger") || strings.Contains(logs.String(), "mirth.hospital.example") {
		t.Error("logs hold a certificate name")
	}
}
