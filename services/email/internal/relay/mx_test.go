package relay_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/dnstest"
	"github.com/carenotify/carenotify/services/email/internal/relay"
	"github.com/carenotify/carenotify/services/email/internal/smtptest"
)

// mxWorld is a recipient domain example.test on loopback: MX mx1 (pref
// 10, 127.0.0.2, where nothing listens) and mx2 (pref 20, the STARTTLS
// server), its MTA-STS policy host, and a DNS server for it all.
type mxWorld struct {
	ca      *smtptest.CA
	srv     *smtptest.Server
	dns     *dnstest.Server
	policy  atomic.Pointer[string] // the policy file served; nil: 404
	fetches atomic.Int32
	stsPort int

	mu      sync.Mutex
	reports []string // OnSTS calls, "mode result"
}

func newMXWorld(t *testing.T) *mxWorld {
	t.Helper()
	w := &mxWorld{ca: smtptest.NewCA(t, "mx1.example.test", "mx2.example.test", "mta-sts.example.test", "127.0.0.1")}
	w.srv = smtptest.Start(t, smtptest.Options{CA: w.ca})
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.fetches.Add(1)
		p := w.policy.Load()
		if p == nil || r.URL.Path != "/.well-known/mta-sts.txt" || r.Host != "mta-sts.example.test" {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(rw, *p)
	}))
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{w.ca.Server}}
	hs.StartTLS()
	t.Cleanup(hs.Close)
	_, port, _ := net.SplitHostPort(hs.Listener.Addr().String())
	w.stsPort, _ = strconv.Atoi(port)
	w.dns = dnstest.Start(t, dnstest.Zone{
		MX: map[string][]dnstest.MX{
			"example.test": {{Pref: 10, Host: "mx1.example.test"}, {Pref: 20, Host: "mx2.example.test"}},
			"null.test":    {{Pref: 0, Host: "."}},
		},
		A: map[string][]net.IP{
			"mx1.example.test":     {net.ParseIP("127.0.0.2")},
			"mx2.example.test":     {net.ParseIP("127.0.0.1")},
			"mta-sts.example.test": {net.ParseIP("127.0.0.1")},
			"implicit.test":        {net.ParseIP("127.0.0.1")},
		},
	})
	return w
}

// serve makes example.test publish policy under id.
func (w *mxWorld) serve(id, policy string) {
	w.dns.SetTXT("_mta-sts.example.test", "v=STSv1; id="+id)
	w.policy.Store(&policy)
}

// relay returns a direct-delivery Relay into w; roots verify the MX
// hosts (the policy host is always verified with w's CA).
func (w *mxWorld) relay(t *testing.T, roots *smtptest.CA) *relay.Relay {
	t.Helper()
	res := w.dns.Resolver()
	return newRelayWith(t, relay.Options{
		Direct: true, MXPort: w.srv.Port, Resolver: res, RootCAs: roots.Pool,
		STS: relay.NewSTS(relay.STSOptions{Resolver: res, RootCAs: w.ca.Pool, Port: w.stsPort}),
		OnSTS: func(mode, result string) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.reports = append(w.reports, mode+" "+result)
		},
	})
}

func (w *mxWorld) stsReports() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.reports, ", ")
}

func to(addr string, level app.TLSLevel) app.Outgoing {
	m := message()
	m.To = addr
	return app.Outgoing{Message: m, TLS: level}
}

func TestDirectMXDelivery(t *testing.T) {
	tests := []struct {
		name        string
		give        app.Outgoing
		policy      string // served as example.test's MTA-STS policy when set
		otherRoots  bool   // the relay does not trust the MX hosts' CA
		wantHop     string // "" when nothing is delivered
		wantReason  string
		wantPerm    bool
		wantReports string
	}{
		{
			name: "first MX unreachable: the next one, verified", give: to("pat@example.test", app.TLSVerified),
			wantHop: "mx2.example.test",
		},
		{
			name: "no MX record: the domain itself", give: to("pat@implicit.test", app.TLSOpportunistic),
			wantHop: "implicit.test",
		},
		{
			name: "null MX: bounced", give: to("pat@null.test", app.TLSVerified),
			wantReason: app.ReasonSMTP5xx, wantPerm: true,
		},
		{
			name: "PHI, MX certificate untrusted: not sent", give: to("pat@example.test", app.TLSVerified), otherRoots: true,
			wantReason: app.ReasonTLSUnverified,
		},
		{
			name: "no-phi, MX certificate untrusted, no policy: opportunistic", give: to("pat@example.test", app.TLSOpportunistic), otherRoots: true,
			wantHop: "mx2.example.test",
		},
		{
			name: "enforced policy naming the MX: sent", give: to("pat@example.test", app.TLSVerified),
			policy:  "version: STSv1\nmode: enforce\nmx: mx1.example.test\nmx: *.example.test\nmax_age: 86400\n",
			wantHop: "mx2.example.test", wantReports: "enforce ok",
		},
		{
			name: "enforced policy naming other hosts: not sent", give: to("pat@example.test", app.TLSOpportunistic),
			policy:     "version: STSv1\r\nmode: enforce\r\nmx: mx.example.net\r\nmax_age: 86400\r\n",
			wantReason: app.ReasonMTASTS, wantReports: "enforce mx_mismatch, enforce mx_mismatch",
		},
		{
			name: "enforced policy: no-phi needs verified TLS too", give: to("pat@example.test", app.TLSOpportunistic), otherRoots: true,
			policy:     "version: STSv1\nmode: enforce\nmx: *.example.test\nmax_age: 86400\n",
			wantReason: app.ReasonTLSUnverified,
		},
		{
			name: "testing policy naming other hosts: sent, reported", give: to("pat@example.test", app.TLSVerified),
			policy:  "version: STSv1\nmode: testing\nmx: mx.example.net\nmax_age: 86400\n",
			wantHop: "mx2.example.test", wantReports: "testing mx_mismatch, testing mx_mismatch, testing ok",
		},
		{
			name: "unparsable policy: none", give: to("pat@example.test", app.TLSVerified),
			policy:  "version: STSv2\nmode: enforce\nmx: mx.example.net\nmax_age: 86400\n",
			wantHop: "mx2.example.test",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newMXWorld(t)
			if tt.policy != "" {
				w.serve("1", tt.policy)
			}
			roots := w.ca
			if tt.otherRoots {
				roots = smtptest.NewCA(t)
			}
			tr, err := w.relay(t, roots).Deliver(t.Context(), tt.give)
			var de *app.DeliveryError
			switch {
			case tt.wantHop == "" && err == nil:
				t.Fatalf("Deliver() sent over %+v, want %s", tr, tt.wantReason)
			case tt.wantHop == "" && (!errors.As(err, &de) || de.Reason != tt.wantReason || de.Permanent != tt.wantPerm):
				t.Fatalf("Deliver() = %v, want reason %s (permanent %v)", err, tt.wantReason, tt.wantPerm)
			case tt.wantHop != "" && err != nil:
				t.Fatalf("Deliver() = %v, want sent via %s", err, tt.wantHop)
			case tt.wantHop != "" && (tr.NextHop != tt.wantHop || (tt.give.TLS == app.TLSVerified && !tr.TLSVerified)):
				t.Errorf("transport = %+v, want next hop %s", tr, tt.wantHop)
			}
			if n, want := len(w.srv.Messages()), map[bool]int{true: 1, false: 0}[tt.wantHop != ""]; n != want {
				t.Errorf("server got %d messages, want %d", n, want)
			}
			if got := w.stsReports(); got != tt.wantReports {
				t.Errorf("MTA-STS reports = %q, want %q", got, tt.wantReports)
			}
			if err != nil && strings.Contains(err.Error(), "example.test") {
				t.Errorf("error names the recipient domain: %v", err)
			}
		})
	}
}

func TestMTASTSCache(t *testing.T) {
	w := newMXWorld(t)
	w.serve("1", "version: STSv1\nmode: enforce\nmx: *.example.test\nmax_age: 86400\n")
	r := w.relay(t, w.ca)
	for range 3 {
		if _, err := r.Deliver(t.Context(), to("pat@example.test", app.TLSVerified)); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.fetches.Load(); n != 1 {
		t.Errorf("policy fetched %d times for 3 messages, want 1 (cached)", n)
	}
	// A new id in DNS: fetched again, and the new policy is in force.
	w.serve("2", "version: STSv1\nmode: enforce\nmx: mx.example.net\nmax_age: 86400\n")
	_, err := r.Deliver(t.Context(), to("pat@example.test", app.TLSVerified))
	var de *app.DeliveryError
	if !errors.As(err, &de) || de.Reason != app.ReasonMTASTS {
		t.Errorf("Deliver() after the policy changed = %v, want %s", err, app.ReasonMTASTS)
	}
	// The policy host fails now: the cached policy stays in force.
	w.policy.Store(nil)
	w.dns.SetTXT("_mta-sts.example.test", "v=STSv1; id=3")
	if _, err := r.Deliver(t.Context(), to("pat@example.test", app.TLSVerified)); !errors.As(err, &de) || de.Reason != app.ReasonMTASTS {
		t.Errorf("Deliver() with the policy host down = %v, want the cached policy (%s)", err, app.ReasonMTASTS)
	}
	if n := w.fetches.Load(); n != 3 {
		t.Errorf("policy fetched %d times, want 3", n)
	}
}
