package devca

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var testHosts = []string{"localhost", "127.0.0.1", "::1"}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEnsureTwiceReturnsSameCA(t *testing.T) {
	dir := t.TempDir()
	first, err := Ensure(dir, testHosts)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := readFile(t, first.CAFile)
	certPEM := readFile(t, first.CertFile)

	second, err := Ensure(dir, testHosts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")}
	if diff := cmp.Diff(want, []string{second.CAFile, second.CertFile, second.KeyFile}); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(caPEM, readFile(t, second.CAFile)); diff != "" {
		t.Errorf("CA changed (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(certPEM, readFile(t, second.CertFile)); diff != "" {
		t.Errorf("server certificate reissued (-first +second):\n%s", diff)
	}
	if !first.Pool.Equal(second.Pool) {
		t.Error("pools differ")
	}
}

func TestEnsureFileModes(t *testing.T) {
	dir := t.TempDir()
	if _, err := Ensure(dir, testHosts); err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{
		"ca.pem":         0o644,
		"ca-key.pem":     0o600,
		"server.pem":     0o644,
		"server-key.pem": 0o600,
	}
	got := map[string]os.FileMode{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		got[e.Name()] = info.Mode().Perm()
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestEnsureReissue(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	type give struct {
		hosts []string
		at    time.Time
	}
	tests := []struct {
		name string
		give give
		want bool // server certificate reissued
	}{
		{name: "same hosts", give: give{testHosts, start.Add(time.Hour)}, want: false},
		{name: "fewer hosts", give: give{[]string{"localhost"}, start.Add(time.Hour)}, want: false},
		{name: "new host", give: give{[]string{"localhost", "inbox.devstack.internal"}, start.Add(time.Hour)}, want: true},
		{name: "new ip", give: give{[]string{"localhost", "192.0.2.10"}, start.Add(time.Hour)}, want: true},
		{name: "close to expiry", give: give{testHosts, start.Add(360 * 24 * time.Hour)}, want: true},
		{name: "expired", give: give{testHosts, start.Add(400 * 24 * time.Hour)}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := ensure(dir, testHosts, start); err != nil {
				t.Fatal(err)
			}
			caPEM := readFile(t, filepath.Join(dir, "ca.pem"))
			certPEM := readFile(t, filepath.Join(dir, "server.pem"))

			ca, err := ensure(dir, tt.give.hosts, tt.give.at)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(caPEM, readFile(t, ca.CAFile)); diff != "" {
				t.Errorf("CA changed (-before +after):\n%s", diff)
			}
			got := !bytes.Equal(certPEM, readFile(t, ca.CertFile))
			if got != tt.want {
				t.Errorf("reissued = %v, want %v", got, tt.want)
			}
			leaf := ca.ServerTLS.Certificates[0].Leaf
			for _, h := range tt.give.hosts {
				if err := leaf.VerifyHostname(h); err != nil {
					t.Errorf("served certificate: %v", err)
				}
			}
		})
	}
}

func TestEnsureReplacesIncompleteCA(t *testing.T) {
	dir := t.TempDir()
	first, err := Ensure(dir, testHosts)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := readFile(t, first.CAFile)
	if err := os.Remove(filepath.Join(dir, "ca-key.pem")); err != nil {
		t.Fatal(err)
	}
	second, err := Ensure(dir, testHosts)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(caPEM, readFile(t, second.CAFile)) {
		t.Error("CA without its key was kept")
	}
	if _, err := second.ServerTLS.Certificates[0].Leaf.Verify(x509.VerifyOptions{Roots: second.Pool}); err != nil {
		t.Errorf("server certificate not signed by the new CA: %v", err)
	}
}

func TestEnsureErrors(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	expiredDir := t.TempDir()
	if _, err := ensure(expiredDir, testHosts, start); err != nil {
		t.Fatal(err)
	}
	type give struct {
		dir   string
		hosts []string
		at    time.Time
	}
	tests := []struct {
		name string
		give give
	}{
		{name: "no hosts", give: give{t.TempDir(), nil, start}},
		{name: "expired CA", give: give{expiredDir, testHosts, start.Add(11 * 365 * 24 * time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ensure(tt.give.dir, tt.give.hosts, tt.give.at); err == nil {
				t.Error("got nil error")
			}
		})
	}
}

func TestServerTLS(t *testing.T) {
	ca, err := Ensure(t.TempDir(), testHosts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ca.ServerTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "hello")
			}()
		}
	}()

	// Trust the CA the way a client would: from the file alone.
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(readFile(t, ca.CAFile)) {
		t.Fatal("no certificate in CAFile")
	}
	tests := []struct {
		name    string
		give    string // server name the client verifies
		want    string
		wantErr bool
	}{
		{name: "dns name", give: "localhost", want: "hello"},
		{name: "ipv4", give: "127.0.0.1", want: "hello"},
		{name: "ipv6", give: "::1", want: "hello"},
		{name: "unknown name", give: "relay.example.org", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: tt.give})
			if (err != nil) != tt.wantErr {
				t.Fatalf("dial: err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer conn.Close()
			got, err := io.ReadAll(conn)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("read (-want +got):\n%s", diff)
			}
		})
	}
}
