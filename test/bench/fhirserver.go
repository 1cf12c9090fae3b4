package bench

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/carenotify/carenotify/deploy/devstack/stack"
)

// fhirClientID is the SMART client id ingest authenticates with at the
// stand-in FHIR server.
const fhirClientID = "carenotify-bench"

// FHIRServer is a local stand-in for an EHR's FHIR API for id-only
// notifications: a SMART Backend Services token endpoint that checks
// each client assertion's ES384 signature and claims against the
// registered public key, and GET <base>/Appointment/<id> answering the
// sample Appointment with that id to holders of a token it issued.
type FHIRServer struct {
	// BaseURL is the FHIR base, http://127.0.0.1:port/fhir.
	BaseURL string
	// ServersFile is an INGEST_FHIR_SERVERS_FILE for ingest's demo source.
	ServersFile string

	srv      *http.Server
	pub      *ecdsa.PublicKey
	appt     []byte // the sample Appointment, ids as placeholder
	mu       sync.Mutex
	tokens   map[string]bool
	issued   atomic.Int64
	reads    atomic.Int64
	failures atomic.Int64
}

// StartFHIRServer starts the stand-in on a free loopback port with a
// fresh P-384 client key, written with the servers file into dir; appt is
// the Appointment resource to serve (its ids as placeholder).
func StartFHIRServer(dir string, appt []byte) (*FHIRServer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "fhir-client.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &FHIRServer{BaseURL: "http://" + l.Addr().String() + "/fhir", pub: &key.PublicKey, appt: appt, tokens: map[string]bool{}}
	servers, err := json.Marshal([]map[string]any{{
		"source": stack.DemoSource, "base_url": f.BaseURL, "token_url": f.tokenURL(), "client_id": fhirClientID,
		"private_key_file": keyFile, "alg": "ES384", "scope": "system/Appointment.rs", "allow_private_addresses": true,
	}})
	if err != nil {
		return nil, err
	}
	f.ServersFile = filepath.Join(dir, "fhir-servers.json")
	if err := os.WriteFile(f.ServersFile, servers, 0o600); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("GET /fhir/Appointment/{id}", f.read)
	f.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = f.srv.Serve(l) }()
	return f, nil
}

func (f *FHIRServer) tokenURL() string { return strings.TrimSuffix(f.BaseURL, "/fhir") + "/token" }

// Close stops the server.
func (f *FHIRServer) Close() { _ = f.srv.Close() }

// Counts returns the tokens issued, resources served and requests
// refused.
func (f *FHIRServer) Counts() (tokens, reads, refused int64) {
	return f.issued.Load(), f.reads.Load(), f.failures.Load()
}

// token implements the client_credentials grant with a private_key_jwt
// client assertion (SMART Backend Services).
func (f *FHIRServer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" ||
		r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		f.refuse(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if err := f.checkAssertion(r.PostForm.Get("client_assertion")); err != nil {
		f.refuse(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	tok := rand.Text()
	f.mu.Lock()
	f.tokens[tok] = true
	f.mu.Unlock()
	f.issued.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": 300, "scope": "system/Appointment.rs"})
}

// checkAssertion verifies an ES384 JWS and its iss, sub, aud and exp.
func (f *FHIRServer) checkAssertion(jws string) error {
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		return errors.New("not a compact JWS")
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Iss, Sub, Aud, Jti string
		Exp                int64
	}
	for i, v := range []any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, v) != nil {
			return errors.New("bad JWS part")
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || hdr.Alg != "ES384" || len(sig) != 96 {
		return errors.New("bad signature encoding")
	}
	digest := sha512.Sum384([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(f.pub, digest[:], new(big.Int).SetBytes(sig[:48]), new(big.Int).SetBytes(sig[48:])) {
		return errors.New("bad signature")
	}
	if claims.Iss != fhirClientID || claims.Sub != fhirClientID || claims.Aud != f.tokenURL() || claims.Jti == "" ||
		time.Unix(claims.Exp, 0).Before(time.Now()) {
		return errors.New("bad claims")
	}
	return nil
}

// read serves the sample Appointment as the id asked for.
func (f *FHIRServer) read(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	ok := f.tokens[tok]
	f.mu.Unlock()
	if !ok {
		f.refuse(w, http.StatusUnauthorized, "invalid_token")
		return
	}
	id, found := strings.CutPrefix(r.PathValue("id"), "bench-appt-")
	if !found || id == "" {
		f.refuse(w, http.StatusNotFound, "not-found")
		return
	}
	f.reads.Add(1)
	w.Header().Set("Content-Type", "application/fhir+json")
	_, _ = w.Write(bytes.ReplaceAll(f.appt, []byte(placeholder), []byte(id)))
}

func (f *FHIRServer) refuse(w http.ResponseWriter, status int, code string) {
	f.failures.Add(1)
	http.Error(w, fmt.Sprintf(`{"error":%q}`, code), status)
}

// IDOnly turns the full-resource notification template into an id-only
// one: the status entry alone, its event's focus a literal
// Appointment/<id> reference the stand-in serves. It returns the
// notification template and the Appointment resource (placeholder ids).
func (n *Notifications) IDOnly() (*Notifications, []byte, error) {
	var b struct {
		Entry []map[string]json.RawMessage `json:"entry"`
	}
	var whole map[string]json.RawMessage
	if err := json.Unmarshal(n.template, &whole); err != nil {
		return nil, nil, err
	}
	if err := json.Unmarshal(n.template, &b); err != nil || len(b.Entry) < 2 {
		return nil, nil, errors.New("sample notification: unexpected shape")
	}
	var appt []byte
	for _, e := range b.Entry[1:] {
		var r struct {
			ResourceType string `json:"resourceType"`
		}
		if json.Unmarshal(e["resource"], &r) == nil && r.ResourceType == "Appointment" {
			appt = e["resource"]
		}
	}
	if appt == nil {
		return nil, nil, errors.New("sample notification has no Appointment")
	}
	entries, err := json.Marshal(b.Entry[:1])
	if err != nil {
		return nil, nil, err
	}
	whole["entry"] = entries
	tmpl, err := json.Marshal(whole)
	if err != nil {
		return nil, nil, err
	}
	// The focus points at the stand-in's base URL form ingest accepts.
	tmpl = bytes.ReplaceAll(tmpl, []byte("https://ehr.example.org/fhir/Appointment/"), []byte("Appointment/"))
	if !bytes.Contains(tmpl, []byte(`"Appointment/bench-appt-`+placeholder+`"`)) {
		return nil, nil, errors.New("sample notification: no Appointment focus")
	}
	return &Notifications{template: tmpl}, appt, nil
}
