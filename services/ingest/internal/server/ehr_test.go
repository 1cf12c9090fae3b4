package server_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carenotify/carenotify/services/ingest/internal/fhirclient"
	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify/fhirnotifytest"
)

// clock is a settable clock shared by the app and the token cache.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// ehrClientID is the SMART client id the stand-in EHR knows.
const ehrClientID = "carenotify-ingest-test"

// athenaTopic is the athenahealth topic of the corpus notification.
const athenaTopic = "https://api.platform.athenahealth.com/fhir/r4/SubscriptionTopic/Appointment.schedule"

// ehr is a stand-in EHR: a SMART token endpoint that verifies the client
// assertion with the registered public key, and a FHIR API serving
// corpus resources to valid tokens only. It counts what it is asked.
type ehr struct {
	t   *testing.T
	srv *httptest.Server
	pub crypto.PublicKey

	mu           sync.Mutex
	tokens       int            // tokens issued
	rejected     int            // token requests refused
	reads        map[string]int // GETs by path
	valid        map[string]bool
	jtis         map[string]bool
	expiresIn    int
	resources    map[string][]byte // "Type/id" → JSON
	eventsQuery  string            // query of the last $events call
	searchQuery  string            // query of the last _lastUpdated search
	statusCalls  int
	issuedTokens []string
	// noEvents, when set, is how $events is refused: 404, 501, or 400
	// with an OperationOutcome not-supported.
	noEvents int
	// metadata, when set, is served as the CapabilityStatement.
	metadata []byte
	// updated, when set, gives the lastUpdated of the Appointments a
	// _lastUpdated search finds (by id), filtered by the search's bounds.
	updated map[string]time.Time
}

// newEHR starts the stand-in EHR with a fresh key of alg (RS384 or
// ES384) and returns it and the private key file.
func newEHR(t *testing.T, alg string) (*ehr, string) {
	t.Helper()
	var (
		der []byte
		pub crypto.PublicKey
		err error
	)
	switch alg {
	case "RS384":
		k, kerr := rsa.GenerateKey(rand.Reader, 2048)
		if kerr != nil {
			t.Fatal(kerr)
		}
		pub = &k.PublicKey
		der, err = x509.MarshalPKCS8PrivateKey(k)
	case "ES384":
		k, kerr := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if kerr != nil {
			t.Fatal(kerr)
		}
		pub = &k.PublicKey
		der, err = x509.MarshalECPrivateKey(k)
	}
	if err != nil {
		t.Fatal(err)
	}
	typ := "PRIVATE KEY"
	if alg == "ES384" {
		typ = "EC PRIVATE KEY"
	}
	keyFile := filepath.Join(t.TempDir(), "client.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &ehr{t: t, pub: pub, reads: map[string]int{}, valid: map[string]bool{}, jtis: map[string]bool{},
		expiresIn: 300, resources: map[string][]byte{}}
	appt := fhirnotifytest.Resource(t, "fhir/r4/Appointment/Appointment-2docs.json")
	for _, id := range []string{"2docs", "gap-2", "gap-3", "gap-4", "gap-5", "gap-6", "gap-7", "later-1"} {
		appt["id"] = id
		appt["meta"] = map[string]any{"versionId": "1"}
		b, err := json.Marshal(appt)
		if err != nil {
			t.Fatal(err)
		}
		e.resources["Appointment/"+id] = b
	}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e, keyFile
}

func (e *ehr) base() string     { return e.srv.URL + "/fhir" }
func (e *ehr) tokenURL() string { return e.srv.URL + "/token" }

func (e *ehr) count(path string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reads[path]
}

func (e *ehr) issued() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tokens
}

func (e *ehr) serve(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r.URL.Path == "/token" {
		e.token(w, r)
		return
	}
	e.reads[r.URL.Path]++
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !e.valid[tok] {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/fhir/")
	switch {
	case path == "Appointment/big":
		w.Header().Set("Content-Type", "application/fhir+json")
		fmt.Fprintf(w, `{"resourceType":"Appointment","id":"big","comment":"%s"}`, strings.Repeat("x", 3<<20))
	case path == "Appointment/deleted":
		http.Error(w, "gone", http.StatusGone)
	case path == "Appointment/redirect":
		http.Redirect(w, r, "http://127.0.0.2:9/fhir/Appointment/2docs", http.StatusFound)
	case path == "Appointment" && r.URL.Query().Get("identifier") == "urn:athenahealth:athenanet:appointment:195900|2":
		writeJSON(w, map[string]any{"resourceType": "Bundle", "type": "searchset", "total": 1, "entry": []any{
			map[string]any{"fullUrl": e.base() + "/Appointment/2docs", "search": map[string]any{"mode": "match"},
				"resource": json.RawMessage(e.resources["Appointment/2docs"])}}})
	case path == "Appointment" && r.URL.Query().Get("_lastUpdated") != "" && e.updated != nil:
		e.searchQuery = r.URL.RawQuery
		writeJSON(w, e.searchWindow(r.URL.Query()["_lastUpdated"]))
	case path == "Appointment" && r.URL.Query().Get("_lastUpdated") != "":
		// Two pages: gap-2, then gap-3 behind a next link.
		id, links := "gap-2", []any{map[string]any{"relation": "next", "url": e.base() + "/Appointment?_page=2&" + r.URL.RawQuery}}
		if r.URL.Query().Get("_page") == "2" {
			id, links = "gap-3", nil
		} else {
			e.searchQuery = r.URL.RawQuery
		}
		writeJSON(w, map[string]any{"resourceType": "Bundle", "type": "searchset", "link": links, "entry": []any{
			map[string]any{"search": map[string]any{"mode": "match"}, "resource": json.RawMessage(e.resources["Appointment/"+id])}}})
	case strings.HasSuffix(path, "/$events") && e.noEvents == http.StatusBadRequest:
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-supported","diagnostics":"Operation $events is not supported"}]}`))
	case strings.HasSuffix(path, "/$events") && e.noEvents != 0:
		http.Error(w, "no such operation", e.noEvents)
	case path == "metadata" && e.metadata != nil:
		w.Header().Set("Content-Type", "application/fhir+json")
		_, _ = w.Write(e.metadata)
	case path == "Subscription/sub-1/$events":
		e.eventsQuery = r.URL.RawQuery
		from, _ := strconv.Atoi(r.URL.Query().Get("eventsSinceNumber"))
		until, _ := strconv.Atoi(r.URL.Query().Get("eventsUntilNumber"))
		var evs []statusEvent
		for i := from; i <= until; i++ {
			evs = append(evs, statusEvent{number: i, focus: fmt.Sprintf("Appointment/gap-%d", i)})
		}
		_, _ = w.Write(statusBundle(e.t, "query-event", "sub-1", until, evs...))
	case strings.HasSuffix(path, "/$status"):
		e.statusCalls++
		_, _ = w.Write(statusBundle(e.t, "query-status", "sub-2", 0))
	default:
		b, ok := e.resources[path]
		if !ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/fhir+json")
		_, _ = w.Write(b)
	}
}

// searchWindow answers a _lastUpdated search over e.updated with a
// searchset Bundle of the Appointments inside the bounds (gt/ge, lt/le).
func (e *ehr) searchWindow(bounds []string) map[string]any {
	in := func(at time.Time) bool {
		for _, b := range bounds {
			t, err := time.Parse(time.RFC3339, b[2:])
			if err != nil {
				e.t.Errorf("bad _lastUpdated %q", b)
				return false
			}
			ok := map[string]bool{"gt": at.After(t), "ge": !at.Before(t), "lt": at.Before(t), "le": !at.After(t)}[b[:2]]
			if !ok {
				return false
			}
		}
		return true
	}
	var ids []string
	for id := range e.updated {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	entries := []any{}
	for _, id := range ids {
		if !in(e.updated[id]) {
			continue
		}
		var res map[string]any
		if err := json.Unmarshal(e.resources["Appointment/"+id], &res); err != nil {
			e.t.Error(err)
			continue
		}
		res["meta"] = map[string]any{"versionId": "1", "lastUpdated": e.updated[id].Format(time.RFC3339)}
		entries = append(entries, map[string]any{"fullUrl": e.base() + "/Appointment/" + id,
			"search": map[string]any{"mode": "match"}, "resource": res})
	}
	return map[string]any{"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
}

// token implements the SMART Backend Services token endpoint.
func (e *ehr) token(w http.ResponseWriter, r *http.Request) {
	refuse := func(why string) {
		e.rejected++
		e.t.Errorf("token endpoint refused the client: %s", why)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
	}
	if err := r.ParseForm(); err != nil {
		refuse("form")
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" ||
		r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		refuse("grant or assertion type")
		return
	}
	payload, err := fhirclient.VerifyJWS(r.PostForm.Get("client_assertion"), e.pub)
	if err != nil {
		refuse(err.Error())
		return
	}
	var c struct {
		Iss, Sub, Aud, Jti string
		Exp, Iat           int64
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		refuse("claims")
		return
	}
	switch {
	case c.Iss != ehrClientID || c.Sub != ehrClientID:
		refuse("iss/sub")
		return
	case c.Aud != e.tokenURL():
		refuse("aud")
		return
	case c.Exp-c.Iat > 300 || c.Exp <= c.Iat:
		refuse("exp")
		return
	case c.Jti == "" || e.jtis[c.Jti]:
		refuse("jti")
		return
	}
	e.jtis[c.Jti] = true
	e.tokens++
	tok := fmt.Sprintf("ehr-token-%d-%s", e.tokens, rand.Text())
	e.valid[tok] = true
	e.issuedTokens = append(e.issuedTokens, tok)
	writeJSON(w, map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": e.expiresIn, "scope": r.PostForm.Get("scope")})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// statusEvent is one notification event of a built notification.
type statusEvent struct {
	number int
	// focus is a literal reference; identifier, when set, is used instead
	// as system|value.
	focus, identifierSystem, identifierValue string
}

// statusBundle builds an R4B-style (athenahealth) notification Bundle
// with a SubscriptionStatus and no resources: an id-only payload.
func statusBundle(t testing.TB, typ, sub string, sinceStart int, evs ...statusEvent) []byte {
	t.Helper()
	return statusBundleAt(t, "2026-01-15T11:59:00Z", "2026-01-15T11:59:30Z", typ, sub, sinceStart, evs...)
}

// statusBundleAt is statusBundle with the events' and the Bundle's
// timestamps.
func statusBundleAt(t testing.TB, eventTime, bundleTime, typ, sub string, sinceStart int, evs ...statusEvent) []byte {
	t.Helper()
	var events []any
	for _, ev := range evs {
		e := map[string]any{"eventNumber": strconv.Itoa(ev.number), "timestamp": eventTime}
		switch {
		case ev.identifierValue != "":
			e["focus"] = map[string]any{"identifier": map[string]any{"system": ev.identifierSystem, "value": ev.identifierValue}}
		case ev.focus != "":
			e["focus"] = map[string]any{"reference": ev.focus}
		}
		events = append(events, e)
	}
	status := map[string]any{"resourceType": "SubscriptionStatus", "status": "active", "type": typ,
		"eventsSinceSubscriptionStart": strconv.Itoa(sinceStart),
		"subscription":                 map[string]any{"reference": "Subscription/" + sub}, "topic": athenaTopic}
	if len(events) > 0 {
		status["notificationEvent"] = events
	}
	return mustJSON(t, map[string]any{"resourceType": "Bundle", "type": "history", "timestamp": bundleTime,
		"entry": []any{map[string]any{"fullUrl": "urn:uuid:7f3e1c52-2b8e-4f7e-9f61-0c7d2b6a9e11", "resource": status}}})
}

// backportIDOnly builds an R4 backport (Inferno-style Parameters)
// id-only event notification for one event.
func backportIDOnly(t testing.TB, sub string, number int, focus string) []byte {
	t.Helper()
	n := strconv.Itoa(number)
	params := map[string]any{"resourceType": "Parameters", "parameter": []any{
		map[string]any{"name": "subscription", "valueReference": map[string]any{"reference": "Subscription/" + sub}},
		map[string]any{"name": "topic", "valueCanonical": "http://hl7.org/SubscriptionTopic/encounter-complete"},
		map[string]any{"name": "status", "valueCode": "active"},
		map[string]any{"name": "type", "valueCode": "event-notification"},
		map[string]any{"name": "events-since-subscription-start", "valueString": n},
		map[string]any{"name": "notification-event", "part": []any{
			map[string]any{"name": "event-number", "valueString": n},
			map[string]any{"name": "timestamp", "valueInstant": "2026-01-15T11:59:00Z"},
			map[string]any{"name": "focus", "valueReference": map[string]any{"reference": focus}},
		}},
	}}
	return mustJSON(t, map[string]any{"resourceType": "Bundle", "type": "history", "timestamp": "2026-01-15T11:59:30Z",
		"entry": []any{map[string]any{"fullUrl": "urn:uuid:5b0e3f7a-8c1d-4e2b-a6f9-3d4c5e6f7a8b", "resource": params}}})
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
