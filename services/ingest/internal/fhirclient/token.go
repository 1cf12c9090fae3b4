package fhirclient

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// assertionLifetime is the exp of a client assertion; SMART allows at
// most five minutes.
const assertionLifetime = 4 * time.Minute

// expiryMargin is how long before its expiry a token is replaced.
const expiryMargin = 30 * time.Second

// maxTokenResponse bounds a token endpoint's answer.
const maxTokenResponse = 64 << 10

// TokenSource gets SMART Backend Services access tokens and caches each
// until shortly before it expires. It is safe for concurrent use; a
// refresh runs once while other callers wait for it.
type TokenSource struct {
	tokenURL, clientID, scope string
	signer                    *signer
	http                      *http.Client
	now                       func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

// Token returns a valid access token, fetching a new one when the cached
// one is missing or about to expire.
func (ts *TokenSource) Token(ctx context.Context) (string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.token != "" && ts.now().Before(ts.expires) {
		return ts.token, nil
	}
	tok, lifetime, err := ts.fetch(ctx)
	if err != nil {
		return "", err
	}
	margin := min(expiryMargin, lifetime/2)
	ts.token, ts.expires = tok, ts.now().Add(lifetime-margin)
	return tok, nil
}

// Invalidate drops the cached token (after a 401 from the FHIR server).
func (ts *TokenSource) Invalidate() {
	ts.mu.Lock()
	ts.token = ""
	ts.mu.Unlock()
}

type assertionClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Aud string `json:"aud"`
	Exp int64  `json:"exp"`
	Iat int64  `json:"iat"`
	Jti string `json:"jti"`
}

// fetch asks the token endpoint for a token.
func (ts *TokenSource) fetch(ctx context.Context) (string, time.Duration, error) {
	now := ts.now()
	assertion, err := ts.signer.sign(assertionClaims{
		Iss: ts.clientID, Sub: ts.clientID, Aud: ts.tokenURL,
		Iat: now.Unix(), Exp: now.Add(assertionLifetime).Unix(), Jti: rand.Text(),
	})
	if err != nil {
		return "", 0, err
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	if ts.scope != "" {
		form.Set("scope", ts.scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, errors.New("token request: bad token url")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := ts.http.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("token request: %w", stripURL(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse+1))
	if err != nil {
		return "", 0, fmt.Errorf("token response: %w", stripURL(err))
	}
	if resp.StatusCode != http.StatusOK {
		// The body may echo the assertion: report the status only.
		return "", 0, fmt.Errorf("token endpoint answered %d", resp.StatusCode)
	}
	if len(body) > maxTokenResponse {
		return "", 0, errors.New("token response too large")
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return "", 0, errors.New("token response: no access_token")
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return "", 0, errors.New("token response: token_type is not bearer")
	}
	lifetime := time.Duration(tr.ExpiresIn) * time.Second
	if lifetime <= 0 {
		lifetime = 5 * time.Minute
	}
	return tr.AccessToken, lifetime, nil
}

// stripURL drops the URL a *url.Error carries: it may name a resource.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return errors.New("timeout")
		}
		return ue.Err
	}
	return err
}
