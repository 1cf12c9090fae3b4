package fhirclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/carenotify/carenotify/services/ingest/internal/config"
)

// Defaults of Options.
const (
	// DefaultMaxResponseBytes bounds a fetched resource or Bundle.
	DefaultMaxResponseBytes = 2 << 20
	// DefaultTimeout bounds one request, redirects and body included.
	DefaultTimeout = 15 * time.Second
)

// Errors the client returns; they carry no URL, id or token.
var (
	// ErrForeignReference: an absolute reference to another server.
	ErrForeignReference error = refusedError("reference is not below the source's base url")
	// ErrBadReference: a reference that is not Type/id.
	ErrBadReference error = refusedError("reference is not a literal Type/id reference")
	// ErrNoMatch: an identifier search found no resource or several.
	ErrNoMatch error = refusedError("identifier search did not find exactly one resource")
	// ErrRedirectOffBase: the server redirected outside its base URL.
	ErrRedirectOffBase = errors.New("redirect off the base url refused")
	// ErrTooLarge: the response exceeded the size limit.
	ErrTooLarge = errors.New("response larger than the limit")
	// ErrAddressNotAllowed: the host resolved to a loopback, private or
	// link-local address and the source does not allow those.
	ErrAddressNotAllowed = errors.New("address not allowed: loopback, private or link-local")
	// ErrWrongResource: the server returned another resource type.
	ErrWrongResource = errors.New("server returned a different resource type")
)

// refusedError is an error retrying cannot fix: the notification itself
// names something that is not fetched.
type refusedError string

func (e refusedError) Error() string { return string(e) }

// Refused reports true: retrying the notification does not help.
func (refusedError) Refused() bool { return true }

// StatusError is a non-200 answer of the FHIR server.
type StatusError struct {
	Status int
	// OutcomeNotSupported is true when the answer was an OperationOutcome
	// with an issue of code not-supported.
	OutcomeNotSupported bool
}

func (e *StatusError) Error() string { return fmt.Sprintf("fhir server answered %d", e.Status) }

// Refused reports whether retrying cannot help: 410 Gone (the resource
// was deleted). A 404 may be replication lag and is retried.
func (e *StatusError) Refused() bool { return e.Status == http.StatusGone }

// NotSupported reports whether the server says it does not offer what
// was asked: 404, 501, or an OperationOutcome with code not-supported.
func (e *StatusError) NotSupported() bool {
	return e.Status == http.StatusNotFound || e.Status == http.StatusNotImplemented || e.OutcomeNotSupported
}

// Options tune a Client; zero values mean the defaults.
type Options struct {
	MaxResponseBytes int64
	Timeout          time.Duration
	// Now is the clock of the token cache; time.Now when nil.
	Now func() time.Time
}

// Client reads from one source's FHIR API. It is safe for concurrent use.
type Client struct {
	base    string // without trailing slash
	baseURL *url.URL
	http    *http.Client
	tokens  *TokenSource
	max     int64
	// topicTypes maps subscription topic URLs to resource types.
	topicTypes map[string]string
	// caps caches the CapabilityStatement's word on $events.
	caps capabilities
}

// New builds the client of one configured FHIR server, reading its
// private key file.
func New(s config.FHIRServer, o Options) (*Client, error) {
	pemBytes, err := os.ReadFile(s.PrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("fhir server %s: read private key file: %w", s.Source, err)
	}
	sg, err := parseKey(pemBytes, s.Alg, s.KeyID)
	if err != nil {
		return nil, fmt.Errorf("fhir server %s: %w", s.Source, err)
	}
	base := strings.TrimSuffix(s.BaseURL, "/")
	bu, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("fhir server %s: bad base_url", s.Source)
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	tr := guardedTransport(s.AllowPrivateAddresses)
	c := &Client{base: base, baseURL: bu, max: o.MaxResponseBytes, topicTypes: s.TopicTypes}
	c.http = &http.Client{Transport: tr, Timeout: o.Timeout, CheckRedirect: c.checkRedirect}
	c.tokens = &TokenSource{
		tokenURL: s.TokenURL, clientID: s.ClientID, scope: s.Scope, signer: sg, now: o.Now,
		http: &http.Client{Transport: tr, Timeout: o.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return ErrRedirectOffBase
		}},
	}
	return c, nil
}

// guardedTransport dials only allowed addresses, checked after name
// resolution, and never uses a proxy.
func guardedTransport(allowPrivate bool) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return ErrAddressNotAllowed
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return ErrAddressNotAllowed
			}
			if !allowPrivate && !publicAddr(ip) {
				return ErrAddressNotAllowed
			}
			return nil
		}}
	return &http.Transport{
		Proxy: nil, DialContext: d.DialContext, ForceAttemptHTTP2: true,
		TLSHandshakeTimeout: 5 * time.Second, ResponseHeaderTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second,
	}
}

// cgnat is the shared address space of RFC 6598.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// publicAddr reports whether ip is a globally routable unicast address.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && !cgnat.Contains(ip)
}

// under reports whether u is the base URL or below it.
func (c *Client) under(u *url.URL) bool {
	if u.Scheme != c.baseURL.Scheme || u.Host != c.baseURL.Host || u.User != nil {
		return false
	}
	return u.Path == c.baseURL.Path || strings.HasPrefix(u.Path, strings.TrimSuffix(c.baseURL.Path, "/")+"/")
}

func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 || !c.under(req.URL) {
		return ErrRedirectOffBase
	}
	return nil
}

var (
	typeRE = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)
	idRE   = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
)

// Path turns a focus reference into the path of its resource below the
// base URL ("Type/id" or "Type/id/_history/vid"). An absolute reference
// must start with the base URL.
func (c *Client) Path(ref string) (string, error) {
	rel := ref
	if strings.Contains(ref, "://") {
		if !strings.HasPrefix(ref, c.base+"/") {
			return "", ErrForeignReference
		}
		rel = strings.TrimPrefix(ref, c.base+"/")
	}
	parts := strings.Split(rel, "/")
	for _, p := range parts {
		if p == "." || p == ".." {
			return "", ErrBadReference
		}
	}
	switch {
	case len(parts) == 2 && typeRE.MatchString(parts[0]) && idRE.MatchString(parts[1]):
	case len(parts) == 4 && typeRE.MatchString(parts[0]) && idRE.MatchString(parts[1]) &&
		parts[2] == "_history" && idRE.MatchString(parts[3]):
	default:
		return "", ErrBadReference
	}
	return rel, nil
}

// Read fetches the resource ref points to and returns its JSON.
func (c *Client) Read(ctx context.Context, ref string) (json.RawMessage, error) {
	path, err := c.Path(ref)
	if err != nil {
		return nil, err
	}
	body, err := c.Get(ctx, path, nil)
	if err != nil {
		return nil, err
	}
	var s struct {
		ResourceType string `json:"resourceType"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, errors.New("fhir server returned no JSON resource")
	}
	if typ, _, _ := strings.Cut(path, "/"); s.ResourceType != typ {
		return nil, ErrWrongResource
	}
	return body, nil
}

// Get fetches base/path?query with a bearer token and returns the body of
// a 200 answer. path must come from Path or be a fixed operation path.
func (c *Client) Get(ctx context.Context, path string, query url.Values) ([]byte, error) {
	u := c.base + "/" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.tokens.Token(ctx)
		if err != nil {
			return nil, err
		}
		body, status, err := c.get(ctx, u, tok)
		if err != nil {
			return nil, err
		}
		if status == http.StatusUnauthorized && attempt == 0 {
			c.tokens.Invalidate()
			continue
		}
		if status != http.StatusOK {
			return nil, &StatusError{Status: status, OutcomeNotSupported: notSupportedOutcome(body)}
		}
		return body, nil
	}
}

func (c *Client) get(ctx context.Context, u, tok string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, ErrBadReference
	}
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("fhir request: %w", stripURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// An error answer's body is read only to find an OperationOutcome.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return b, resp.StatusCode, nil
	}
	if resp.ContentLength > c.max {
		return nil, 0, ErrTooLarge
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.max+1))
	if err != nil {
		return nil, 0, fmt.Errorf("fhir response: %w", stripURL(err))
	}
	if int64(len(body)) > c.max {
		return nil, 0, ErrTooLarge
	}
	return body, http.StatusOK, nil
}

// Registry holds the clients of the sources that have a FHIR server.
type Registry struct {
	clients map[string]*Client
}

// NewRegistry builds a client per configured server.
func NewRegistry(servers []config.FHIRServer, o Options) (*Registry, error) {
	r := &Registry{clients: map[string]*Client{}}
	for _, s := range servers {
		c, err := New(s, o)
		if err != nil {
			return nil, err
		}
		r.clients[s.Source] = c
	}
	return r, nil
}

// Configured reports whether source has a FHIR server.
func (r *Registry) Configured(source string) bool {
	if r == nil {
		return false
	}
	_, ok := r.clients[source]
	return ok
}

// Read fetches ref from source's FHIR server.
func (r *Registry) Read(ctx context.Context, source, ref string) (json.RawMessage, error) {
	c, ok := r.clients[source]
	if !ok {
		return nil, errors.New("source has no fhir server")
	}
	return c.Read(ctx, ref)
}

// TopicType returns the resource type configured for a subscription
// topic of source.
func (r *Registry) TopicType(source, topic string) (string, bool) {
	c, ok := r.clients[source]
	if !ok || topic == "" {
		return "", false
	}
	t, ok := c.topicTypes[topic]
	return t, ok
}

// SearchIdentifier finds the one resource of type typ with the business
// identifier system|value and returns its JSON.
func (r *Registry) SearchIdentifier(ctx context.Context, source, typ, system, value string) (json.RawMessage, error) {
	c, ok := r.clients[source]
	if !ok {
		return nil, errors.New("source has no fhir server")
	}
	if !typeRE.MatchString(typ) || value == "" {
		return nil, ErrBadReference
	}
	token := value
	if system != "" {
		token = system + "|" + value
	}
	body, err := c.Get(ctx, typ, url.Values{"identifier": {token}})
	if err != nil {
		return nil, err
	}
	var b struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Search   struct{ Mode string } `json:"search"`
			Resource json.RawMessage       `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &b); err != nil || b.ResourceType != "Bundle" {
		return nil, errors.New("fhir server returned no search Bundle")
	}
	var found []json.RawMessage
	for _, e := range b.Entry {
		var s struct {
			ResourceType string `json:"resourceType"`
		}
		if e.Search.Mode != "include" && e.Search.Mode != "outcome" && json.Unmarshal(e.Resource, &s) == nil && s.ResourceType == typ {
			found = append(found, e.Resource)
		}
	}
	if len(found) != 1 {
		return nil, ErrNoMatch
	}
	return found[0], nil
}

// maxSearchPages bounds the pages of one search.
const maxSearchPages = 20

// ErrTooManyPages: a search had more pages than maxSearchPages.
var ErrTooManyPages = errors.New("search has too many pages")

// SearchSince returns the resources of type typ last updated after
// since (and, when until is not zero, at or before until):
// GET <base>/<typ>?_lastUpdated=gt<since>[&_lastUpdated=le<until>]&_sort=_lastUpdated,
// following "next" links that stay below the base URL.
func (r *Registry) SearchSince(ctx context.Context, source, typ string, since, until time.Time) ([]json.RawMessage, error) {
	c, ok := r.clients[source]
	if !ok {
		return nil, errors.New("source has no fhir server")
	}
	if !typeRE.MatchString(typ) {
		return nil, ErrBadReference
	}
	q := url.Values{"_lastUpdated": {"gt" + since.UTC().Format(time.RFC3339)}, "_sort": {"_lastUpdated"}}
	if !until.IsZero() {
		q.Add("_lastUpdated", "le"+until.UTC().Format(time.RFC3339))
	}
	body, err := c.Get(ctx, typ, q)
	if err != nil {
		return nil, err
	}
	var out []json.RawMessage
	for page := 1; ; page++ {
		var b struct {
			ResourceType string `json:"resourceType"`
			Link         []struct {
				Relation string `json:"relation"`
				URL      string `json:"url"`
			} `json:"link"`
			Entry []struct {
				Search   struct{ Mode string } `json:"search"`
				Resource json.RawMessage       `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(body, &b); err != nil || b.ResourceType != "Bundle" {
			return nil, errors.New("fhir server returned no search Bundle")
		}
		for _, e := range b.Entry {
			var s struct {
				ResourceType string `json:"resourceType"`
			}
			if e.Search.Mode != "include" && e.Search.Mode != "outcome" && json.Unmarshal(e.Resource, &s) == nil && s.ResourceType == typ {
				out = append(out, e.Resource)
			}
		}
		next := ""
		for _, l := range b.Link {
			if l.Relation == "next" {
				next = l.URL
			}
		}
		if next == "" {
			return out, nil
		}
		if page >= maxSearchPages {
			return nil, ErrTooManyPages
		}
		u, err := url.Parse(next)
		if err != nil || !c.under(u) {
			return nil, ErrRedirectOffBase
		}
		if body, err = c.Get(ctx, strings.TrimPrefix(strings.TrimPrefix(u.Path, c.baseURL.Path), "/"), u.Query()); err != nil {
			return nil, err
		}
	}
}

// Events calls Subscription/<id>/$events for event numbers from..until
// and returns the Bundle.
func (r *Registry) Events(ctx context.Context, source, subscriptionID string, from, until int64) ([]byte, error) {
	c, ok := r.clients[source]
	if !ok {
		return nil, errors.New("source has no fhir server")
	}
	if !idRE.MatchString(subscriptionID) {
		return nil, ErrBadReference
	}
	return c.Get(ctx, "Subscription/"+subscriptionID+"/$events", url.Values{
		"eventsSinceNumber": {fmt.Sprint(from)}, "eventsUntilNumber": {fmt.Sprint(until)},
	})
}

// Status calls Subscription/<id>/$status and returns the answer.
func (r *Registry) Status(ctx context.Context, source, subscriptionID string) ([]byte, error) {
	c, ok := r.clients[source]
	if !ok {
		return nil, errors.New("source has no fhir server")
	}
	if !idRE.MatchString(subscriptionID) {
		return nil, ErrBadReference
	}
	return c.Get(ctx, "Subscription/"+subscriptionID+"/$status", nil)
}
