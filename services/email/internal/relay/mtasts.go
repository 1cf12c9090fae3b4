package relay

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MTA-STS policy modes (RFC 8461 §3.2).
const (
	STSEnforce = "enforce"
	STSTesting = "testing"
	STSNone    = "none"
)

// STSPolicy is a recipient domain's MTA-STS policy.
type STSPolicy struct {
	// ID is the policy id from the _mta-sts TXT record.
	ID string
	// Mode is enforce, testing or none.
	Mode string
	// MX are the host patterns the domain's MX hosts must match
	// ("mx.example.org", "*.example.net": one leftmost label).
	MX []string
	// MaxAge is how long the policy may be cached.
	MaxAge time.Duration
	// fetched is when it was fetched.
	fetched time.Time
}

// Matches reports whether MX host h matches one of the policy's patterns
// (RFC 8461 §4.1).
func (p *STSPolicy) Matches(h string) bool {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	for _, pat := range p.MX {
		if rest, ok := strings.CutPrefix(pat, "*."); ok {
			if _, tail, found := strings.Cut(h, "."); found && tail == rest {
				return true
			}
			continue
		}
		if pat == h {
			return true
		}
	}
	return false
}

// maxSTSPolicyBytes bounds a policy file (RFC 8461 §3.3 suggests 64 KiB).
const maxSTSPolicyBytes = 64 << 10

// maxSTSAge is the longest max_age honoured (RFC 8461 §3.2: 31557600).
const maxSTSAge = 31557600 * time.Second

// STSOptions configure an STS fetcher.
type STSOptions struct {
	// Resolver looks up _mta-sts TXT records and the policy host.
	Resolver *net.Resolver
	// RootCAs verify the policy host's certificate (HTTPS).
	RootCAs *x509.CertPool
	// Port is the HTTPS port of the policy host: 443 when 0 (tests use
	// another).
	Port int
	// Timeout bounds one lookup and fetch; 10 s when 0.
	Timeout time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// STS finds and caches recipient domains' MTA-STS policies (RFC 8461):
// the _mta-sts.<domain> TXT record names the policy's id; the policy is
// fetched from https://mta-sts.<domain>/.well-known/mta-sts.txt over
// verified TLS (no redirects) and cached for its max_age, refetched when
// the TXT record's id changes. When the TXT record or the fetch fails, a
// cached policy that has not expired stays in force; without one the
// domain has no policy (RFC 8461 §5: fail open on discovery, never on a
// policy in force).
type STS struct {
	o      STSOptions
	client *http.Client

	mu    sync.Mutex
	cache map[string]*STSPolicy
}

// NewSTS returns an STS fetcher.
func NewSTS(o STSOptions) *STS {
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Port == 0 {
		o.Port = 443
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	d := &net.Dialer{Resolver: o.Resolver, Timeout: o.Timeout}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return d.DialContext(ctx, network, net.JoinHostPort(host, strconv.Itoa(o.Port)))
		},
		TLSClientConfig:     &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: o.Timeout,
		Proxy:               nil,
	}
	return &STS{
		o: o, cache: map[string]*STSPolicy{},
		client: &http.Client{
			Transport: tr, Timeout: o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Policy returns domain's policy in force, nil when it has none.
func (s *STS) Policy(ctx context.Context, domain string) *STSPolicy {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	now := s.o.Now()
	s.mu.Lock()
	cached := s.cache[domain]
	s.mu.Unlock()
	if cached != nil && !now.Before(cached.fetched.Add(cached.MaxAge)) {
		cached = nil
	}
	id, err := s.lookupID(ctx, domain)
	switch {
	case err != nil:
		return cached
	case id == "":
		// No TXT record (any longer): a cached policy stays until it
		// expires (RFC 8461 §3.3, "Policy Discovery").
		return cached
	case cached != nil && cached.ID == id:
		return cached
	}
	p, err := s.fetch(ctx, domain)
	if err != nil {
		return cached
	}
	p.ID, p.fetched = id, now
	s.mu.Lock()
	if p.Mode == STSNone {
		delete(s.cache, domain)
	} else {
		s.cache[domain] = p
	}
	s.mu.Unlock()
	if p.Mode == STSNone {
		return nil
	}
	return p
}

// lookupID returns the id of domain's _mta-sts TXT record ("v=STSv1;
// id=..."), "" when there is none (or more than one, RFC 8461 §3.1).
func (s *STS) lookupID(ctx context.Context, domain string) (string, error) {
	txts, err := s.o.Resolver.LookupTXT(ctx, "_mta-sts."+domain)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var ids []string
	for _, t := range txts {
		if !strings.HasPrefix(t, "v=STSv1") {
			continue
		}
		for _, f := range strings.Split(t, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(f), "="); ok && k == "id" && v != "" {
				ids = append(ids, v)
			}
		}
	}
	if len(ids) != 1 {
		return "", nil
	}
	return ids[0], nil
}

// fetch reads and parses domain's policy file.
func (s *STS) fetch(ctx context.Context, domain string) (*STSPolicy, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://mta-sts."+domain+"/.well-known/mta-sts.txt", nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch MTA-STS policy: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch MTA-STS policy: status %d", resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/plain" {
		return nil, errors.New("fetch MTA-STS policy: not text/plain")
	}
	return ParseSTSPolicy(io.LimitReader(resp.Body, maxSTSPolicyBytes))
}

// ParseSTSPolicy parses a policy file (RFC 8461 §3.2): "key: value" lines,
// version STSv1, mode, one mx per line (except for mode none), max_age
// in seconds. Unknown keys are ignored.
func ParseSTSPolicy(r io.Reader) (*STSPolicy, error) {
	p := &STSPolicy{}
	var version string
	age := -1
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "version":
			version = v
		case "mode":
			p.Mode = v
		case "mx":
			p.MX = append(p.MX, strings.ToLower(strings.TrimSuffix(v, ".")))
		case "max_age":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, errors.New("MTA-STS policy: bad max_age")
			}
			age = n
		}
	}
	switch {
	case version != "STSv1":
		return nil, errors.New("MTA-STS policy: version is not STSv1")
	case p.Mode != STSEnforce && p.Mode != STSTesting && p.Mode != STSNone:
		return nil, errors.New("MTA-STS policy: bad mode")
	case age < 0:
		return nil, errors.New("MTA-STS policy: no max_age")
	case p.Mode != STSNone && len(p.MX) == 0:
		return nil, errors.New("MTA-STS policy: no mx")
	}
	p.MaxAge = min(time.Duration(age)*time.Second, maxSTSAge)
	return p, nil
}
