package twilio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/carenotify/carenotify/services/sms/internal/app"
)

// Options configure a Client.
type Options struct {
	// BaseURL is the API's base, "https://api.twilio.com" in production.
	BaseURL string
	// AccountSID ("AC…") and AuthToken are the credentials.
	AccountSID, AuthToken string
	// Timeout bounds one request.
	Timeout time.Duration
}

// Client sends messages through Twilio's Messages API.
type Client struct {
	o    Options
	http *http.Client
	url  string
}

var _ app.Provider = (*Client)(nil)

// New returns a Client.
func New(o Options) *Client {
	return &Client{
		o:    o,
		http: &http.Client{Timeout: o.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		url:  strings.TrimRight(o.BaseURL, "/") + "/2010-04-01/Accounts/" + url.PathEscape(o.AccountSID) + "/Messages.json",
	}
}

// Name returns "twilio", the provider's name in logs and records.
func (c *Client) Name() string { return "twilio" }

// message is the part of the Message resource the client reads.
type message struct {
	SID    string `json:"sid"`
	Status string `json:"status"`
}

// apiError is Twilio's error JSON. Message and MoreInfo are read but
// never kept: Twilio's messages quote the number.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  int    `json:"status"`
}

// Send implements app.Provider: it posts To, From or MessagingServiceSid
// (a sender starting with "MG"), Body and StatusCallback, and returns the
// message SID from the 201 answer. Failures are *app.ProviderError:
// 429 (throttled) and 5xx are retryable, as are network errors and 401
// (credentials being rotated); 21211 and 21614 are invalid_number,
// 21610 unsubscribed and every other 4xx rejected, all permanent.
func (c *Client) Send(ctx context.Context, o app.Outgoing) (string, error) {
	form := url.Values{"To": {o.To}, "Body": {o.Body}}
	if strings.HasPrefix(o.From, "MG") {
		form.Set("MessagingServiceSid", o.From)
	} else {
		form.Set("From", o.From)
	}
	if o.StatusCallback != "" {
		form.Set("StatusCallback", o.StatusCallback)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader(form.Encode()))
	if err != nil {
		return "", &app.ProviderError{Reason: app.ReasonConnect, Detail: "build request"}
	}
	req.SetBasicAuth(c.o.AccountSID, c.o.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		// The URL holds no PHI; the error text of net/http names it and
		// the network failure only.
		return "", &app.ProviderError{Reason: app.ReasonConnect, Detail: netDetail(err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", &app.ProviderError{Reason: app.ReasonConnect, HTTPStatus: resp.StatusCode, Detail: "read answer"}
	}
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK {
		var m message
		if err := json.Unmarshal(b, &m); err != nil || !strings.HasPrefix(m.SID, "SM") && !strings.HasPrefix(m.SID, "MM") {
			// Accepted, but the answer is not a Message: do not retry (it
			// could send twice); the message has no SID for receipts.
			return "", &app.ProviderError{Permanent: true, Reason: app.ReasonRejected, HTTPStatus: resp.StatusCode, Detail: "answer is not a Message resource"}
		}
		return m.SID, nil
	}
	return "", classify(resp.StatusCode, b)
}

// classify turns an error answer into a *app.ProviderError.
func classify(status int, body []byte) *app.ProviderError {
	var e apiError
	_ = json.Unmarshal(body, &e)
	pe := &app.ProviderError{HTTPStatus: status, Code: e.Code}
	switch {
	case status == http.StatusTooManyRequests:
		pe.Reason = app.ReasonThrottle
	case status >= 500:
		pe.Reason = app.ReasonProvider
	case status == http.StatusUnauthorized || e.Code == 20003:
		pe.Reason = app.ReasonAuth
	case e.Code == 21211 || e.Code == 21614:
		pe.Permanent, pe.Reason = true, app.ReasonInvalidNumber
	case e.Code == 21610:
		pe.Permanent, pe.Reason = true, app.ReasonUnsubscribed
	default:
		pe.Permanent, pe.Reason = true, app.ReasonRejected
	}
	return pe
}

// netDetail describes a network error without the request (its URL is
// the API endpoint, no PHI, but keep it short).
func netDetail(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return fmt.Sprintf("%.200s", err.Error())
}
