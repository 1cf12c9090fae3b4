package mllp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/hl7"
	"github.com/carenotify/carenotify/pkg/hl7/hl7test"
	hl7mllp "github.com/carenotify/carenotify/pkg/hl7/mllp"
	"github.com/carenotify/carenotify/pkg/log"
	"github.com/carenotify/carenotify/pkg/log/logtest"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/mllp"
)

// accepting is an Ingester that accepts every message without an event.
type accepting struct{}

func (accepting) IngestHL7(_ context.Context, _ app.Source, raw []byte) (app.HL7Result, error) {
	m, err := hl7.Parse(raw)
	if err != nil {
		return app.HL7Result{}, &app.Error{Kind: app.KindInvalid}
	}
	return app.HL7Result{Message: m, Type: m.Type().String()}, nil
}

func (accepting) IngestHL7Batch(context.Context, app.Source, []byte) (app.HL7BatchResult, error) {
	return app.HL7BatchResult{}, nil
}

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ingest-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// TestTLS speaks MLLP over TLS.
func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := mllp.New(mllp.Options{App: accepting{}, Source: app.Source{Name: "demo", Tenant: "demo"},
		MaxFrameBytes: maxFrame, ReadTimeout: 5 * time.Second, MaxConns: 2,
		TLS:    &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Logger: log.New(&logtest.Buffer{}, 0, "ingest")})
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })

	conn, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := hl7mllp.WriteFrame(conn, hl7test.Read(t, "ADT_A04/msconv-ADT04-251.hl7")); err != nil {
		t.Fatal(err)
	}
	raw, err := hl7mllp.NewReader(conn, maxFrame).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if got := parseACK(t, raw).Get("MSA-1"); got != "AA" {
		t.Errorf("ACK over TLS = %q", got)
	}
}

// TestIdleTimeout closes a connection that sends nothing.
func TestIdleTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := mllp.New(mllp.Options{App: accepting{}, Source: app.Source{Name: "demo", Tenant: "demo"},
		MaxFrameBytes: maxFrame, ReadTimeout: 200 * time.Millisecond, MaxConns: 1, Logger: log.New(&logtest.Buffer{}, 0, "ingest")})
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	c := hl7test.Dial(t, l.Addr().String())
	if _, err := c.Read(); err == nil {
		t.Fatal("idle connection answered a frame")
	}
	// MaxConns is 1: the slot is free again, so a new connection is served.
	c2 := hl7test.Dial(t, l.Addr().String())
	if got := parseACK(t, c2.Send(t, hl7test.Read(t, "ADT_A04/msconv-ADT04-251.hl7"))).Get("MSA-1"); got != "AA" {
		t.Errorf("after idle close: ACK %q", got)
	}
}
