package service_test

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/hl7"
	"github.com/carenotify/carenotify/pkg/hl7/hl7test"
	hl7mllp "github.com/carenotify/carenotify/pkg/hl7/mllp"
	"github.com/carenotify/carenotify/pkg/log/logtest"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
	"github.com/carenotify/carenotify/services/ingest/internal/testca"
)

// TestMLLPSourceByCertificate: with a client CA and mtls sources, the MLLP
// listener runs without INGEST_MLLP_SOURCE, requires a client certificate
// and takes each connection's source from it.
func TestMLLPSourceByCertificate(t *testing.T) {
	ca := testca.New(t, "hospital test CA")
	dir := t.TempDir()
	logs := &logtest.Buffer{}
	ml := listen(t)
	cfg := startServiceWith(t, logs, func(c *config.Config) {
		c.Sources = append(c.Sources, config.Source{Name: "mirth", Tenant: "north", Auth: config.AuthMTLS, MTLS: config.MTLS{DNS: "mirth.hospital.example"}})
		c.MLLPListener, c.MLLPAddr = ml, ml.Addr().String()
		c.MLLPReadTimeout, c.MLLPMaxFrameBytes, c.MLLPMaxConns, c.MLLPTimeZone = 5*time.Second, 1<<20, 4, "UTC"
		c.MLLPTLSCertFile, c.MLLPTLSKeyFile = testca.WritePair(t, dir, "server", ca.Server(t))
		c.TLSClientCAFile = ca.WriteCA(t, dir)
	})
	send := func(certs ...tls.Certificate) (string, error) {
		conn, err := tls.Dial("tcp", cfg.MLLPAddr, &tls.Config{RootCAs: ca.Pool, Certificates: certs, MinVersion: tls.VersionTLS12})
		if err != nil {
			return "", err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if err := hl7mllp.WriteFrame(conn, hl7test.Read(t, "SIU_S12/msconv-SIU-S12-01.hl7")); err != nil {
			return "", err
		}
		raw, err := hl7mllp.NewReader(conn, 1<<20).ReadFrame()
		if err != nil {
			return "", err
		}
		ack, err := hl7.Parse(raw)
		if err != nil {
			return "", err
		}
		return ack.Get("MSA-1"), nil
	}
	if ack, err := send(ca.Client(t, testca.Identity{DNS: "mirth.hospital.example"})); err != nil || ack != "AA" {
		t.Fatalf("ACK %q, %v; want AA", ack, err)
	}
	if ack, err := send(); err == nil {
		t.Errorf("without a certificate: ACK %q, want the connection refused", ack)
	}
	_, metrics := get(t, cfg, "/metrics")
	if want := `ingest_hl7_messages_total{ack="AA",source="mirth",type="SIU^S12"} 1`; !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %s", want)
	}
	for _, phi := range []string{"EVERYMAN", "ADAM", "PATID1234", "mirth.hospital.example"} {
		if strings.Contains(logs.String(), phi) {
			t.Errorf("logs contain %q", phi)
		}
	}
}
