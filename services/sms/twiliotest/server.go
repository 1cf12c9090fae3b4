package twiliotest

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Message is one message the stand-in accepted (Direction
// "outbound-api") or that an inbound webhook's TwiML replied with
// ("outbound-reply").
type Message struct {
	SID, AccountSID, MessagingServiceSID string
	To, From, Body, StatusCallback       string
	Direction                            string
	NumSegments                          int
	DateCreated                          time.Time
}

// Failure is an injected answer to the next Count requests to the
// Messages API (Count 0 means 1).
type Failure struct {
	// Status is the HTTP status, e.g. 429, 500, 503, or 400.
	Status int
	// Code is the Twilio error code, e.g. 20429, 20500, 21211.
	Code int
	// Message is the error message; a generic one when empty.
	Message string
	Count   int
}

// Options configure a Server.
type Options struct {
	// AccountSID and AuthToken are the credentials it accepts and signs
	// webhooks with. Defaults: a fixed test account and token.
	AccountSID, AuthToken string
	// AutoReceipts makes the server post "sent" and then "delivered" to a
	// message's StatusCallback right after accepting it, as Twilio does
	// (the development stack uses it).
	AutoReceipts bool
	// Listener, when set, is served instead of a new one on 127.0.0.1:0.
	Listener net.Listener
	// OnMessage, when set, is called with every message accepted or
	// replied (the development stack shows them in its inbox).
	OnMessage func(Message)
}

// Default credentials of a Server without options.
const (
	DefaultAccountSID = "AC00000000000000000000000000000001"
	DefaultAuthToken  = "twiliotest-auth-token"
)

// Server is a running stand-in.
type Server struct {
	o      Options
	srv    *http.Server
	url    string
	client *http.Client

	mu           sync.Mutex
	messages     []Message
	failures     []Failure
	unsubscribed map[string]bool
	changed      chan struct{} // closed and replaced on every new message
	wg           sync.WaitGroup
}

// Start starts a Server.
func Start(o Options) (*Server, error) {
	if o.AccountSID == "" {
		o.AccountSID = DefaultAccountSID
	}
	if o.AuthToken == "" {
		o.AuthToken = DefaultAuthToken
	}
	l := o.Listener
	if l == nil {
		var err error
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("twiliotest: listen: %w", err)
		}
	}
	s := &Server{
		o: o, url: "http://" + l.Addr().String(), client: &http.Client{Timeout: 10 * time.Second},
		unsubscribed: map[string]bool{}, changed: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/2010-04-01/Accounts/{account}/Messages.json", s.messagesAPI)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

// URL is the base URL to configure as the Twilio API base.
func (s *Server) URL() string { return s.url }

// AccountSID returns the account the server accepts.
func (s *Server) AccountSID() string { return s.o.AccountSID }

// AuthToken returns the token the server accepts and signs with.
func (s *Server) AuthToken() string { return s.o.AuthToken }

// Close stops the server and waits for pending receipts.
func (s *Server) Close() {
	_ = s.srv.Close()
	s.wg.Wait()
}

// Fail makes the next f.Count requests to the Messages API fail with f.
func (s *Server) Fail(f Failure) {
	if f.Count == 0 {
		f.Count = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, f)
}

// Unsubscribe makes sends to number fail with 21610, as after the
// recipient replied STOP to Twilio; Subscribe undoes it.
func (s *Server) Unsubscribe(number string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unsubscribed[number] = true
}

// Subscribe undoes Unsubscribe.
func (s *Server) Subscribe(number string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.unsubscribed, number)
}

// Messages returns every message so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// WaitMessages waits until at least n messages were accepted and returns
// them all, or ctx's error.
func (s *Server) WaitMessages(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		msgs, ch := append([]Message(nil), s.messages...), s.changed
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return msgs, fmt.Errorf("twiliotest: %d of %d messages: %w", len(msgs), n, ctx.Err())
		}
	}
}

func (s *Server) add(m Message) {
	s.mu.Lock()
	s.messages = append(s.messages, m)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	if s.o.OnMessage != nil {
		s.o.OnMessage(m)
	}
}

// apiError is Twilio's error JSON.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apiError{
		Code: code, Message: msg, MoreInfo: "https://www.twilio.com/docs/errors/" + strconv.Itoa(code), Status: status,
	})
}

// messageResource is the Message resource as the API returns it.
type messageResource struct {
	AccountSID          string            `json:"account_sid"`
	APIVersion          string            `json:"api_version"`
	Body                string            `json:"body"`
	DateCreated         string            `json:"date_created"`
	DateSent            *string           `json:"date_sent"`
	DateUpdated         string            `json:"date_updated"`
	Direction           string            `json:"direction"`
	ErrorCode           *int              `json:"error_code"`
	ErrorMessage        *string           `json:"error_message"`
	From                *string           `json:"from"`
	MessagingServiceSID *string           `json:"messaging_service_sid"`
	NumMedia            string            `json:"num_media"`
	NumSegments         string            `json:"num_segments"`
	Price               *string           `json:"price"`
	PriceUnit           string            `json:"price_unit"`
	SID                 string            `json:"sid"`
	Status              string            `json:"status"`
	SubresourceURIs     map[string]string `json:"subresource_uris"`
	To                  string            `json:"to"`
	URI                 string            `json:"uri"`
}

func (s *Server) messagesAPI(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != s.o.AccountSID || pass != s.o.AuthToken {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		writeError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if r.PathValue("account") != s.o.AccountSID {
		writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, 20004, "Method not allowed")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		writeError(w, http.StatusBadRequest, 20001, "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, 20001, "Unable to parse request")
		return
	}
	s.mu.Lock()
	var fail *Failure
	if len(s.failures) > 0 {
		f := s.failures[0]
		fail = &f
		if s.failures[0].Count--; s.failures[0].Count == 0 {
			s.failures = s.failures[1:]
		}
	}
	to, from, svc, body := r.PostForm.Get("To"), r.PostForm.Get("From"), r.PostForm.Get("MessagingServiceSid"), r.PostForm.Get("Body")
	unsub := s.unsubscribed[to]
	s.mu.Unlock()
	if fail != nil {
		msg := fail.Message
		if msg == "" {
			msg = http.StatusText(fail.Status)
		}
		if fail.Status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, fail.Status, fail.Code, msg)
		return
	}
	switch {
	case to == "":
		writeError(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.")
		return
	case from == "" && svc == "":
		writeError(w, http.StatusBadRequest, 21603, "A 'From' phone number is required.")
		return
	case body == "":
		writeError(w, http.StatusBadRequest, 21602, "Message body is required.")
		return
	case utf8.RuneCountInString(body) > 1600:
		writeError(w, http.StatusBadRequest, 21617, "The concatenated message body exceeds the 1600 character limit.")
		return
	case !e164(to):
		writeError(w, http.StatusBadRequest, 21211, fmt.Sprintf("The 'To' number %s is not a valid phone number.", to))
		return
	case unsub:
		writeError(w, http.StatusBadRequest, 21610, "Attempt to send to unsubscribed recipient")
		return
	}
	m := Message{
		SID: newSID("SM"), AccountSID: s.o.AccountSID, MessagingServiceSID: svc, To: to, From: from, Body: body,
		StatusCallback: r.PostForm.Get("StatusCallback"), Direction: "outbound-api",
		NumSegments: segments(body), DateCreated: time.Now().UTC(),
	}
	s.add(m)
	status := "queued"
	if svc != "" {
		status = "accepted"
	}
	res := resource(m, status)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(res)
	if s.o.AutoReceipts && m.StatusCallback != "" {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, st := range []string{"sent", "delivered"} {
				if _, err := s.Receipt(ctx, m.SID, st, 0); err != nil {
					return
				}
			}
		}()
	}
}

func resource(m Message, status string) messageResource {
	date := m.DateCreated.Format(time.RFC1123Z)
	res := messageResource{
		AccountSID: m.AccountSID, APIVersion: "2010-04-01", Body: m.Body, DateCreated: date, DateUpdated: date,
		Direction: m.Direction, NumMedia: "0", NumSegments: strconv.Itoa(m.NumSegments), PriceUnit: "USD",
		SID: m.SID, Status: status, To: m.To,
		URI: "/2010-04-01/Accounts/" + m.AccountSID + "/Messages/" + m.SID + ".json",
		SubresourceURIs: map[string]string{
			"media": "/2010-04-01/Accounts/" + m.AccountSID + "/Messages/" + m.SID + "/Media.json",
		},
	}
	if m.From != "" {
		res.From = &m.From
	}
	if m.MessagingServiceSID != "" {
		res.MessagingServiceSID = &m.MessagingServiceSID
	}
	return res
}

// Receipt posts a status callback for message sid to its StatusCallback
// as Twilio does: MessageStatus status ("sent", "delivered",
// "undelivered", "failed"), ErrorCode when not 0, signed. It returns the
// HTTP status of the answer.
func (s *Server) Receipt(ctx context.Context, sid, status string, errorCode int) (int, error) {
	var m *Message
	s.mu.Lock()
	for i := range s.messages {
		if s.messages[i].SID == sid {
			m = &s.messages[i]
		}
	}
	s.mu.Unlock()
	if m == nil || m.StatusCallback == "" {
		return 0, errors.New("twiliotest: no such message, or it has no StatusCallback")
	}
	form := url.Values{
		"AccountSid": {m.AccountSID}, "ApiVersion": {"2010-04-01"}, "MessageSid": {m.SID}, "SmsSid": {m.SID},
		"MessageStatus": {status}, "SmsStatus": {status}, "To": {m.To},
	}
	if m.From != "" {
		form.Set("From", m.From)
	}
	if m.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", m.MessagingServiceSID)
	}
	if errorCode != 0 {
		form.Set("ErrorCode", strconv.Itoa(errorCode))
	}
	code, _, err := s.post(ctx, m.StatusCallback, form, s.o.AuthToken)
	return code, err
}

// Inbound posts an incoming text from a patient's number to our number
// to webhookURL, as Twilio posts it, signed with the auth token (or with
// token when given, to test a forged request). It returns the answer's
// HTTP status and body; a TwiML <Message> in it is recorded as a reply.
func (s *Server) Inbound(ctx context.Context, webhookURL, from, to, body string) (int, string, error) {
	return s.inbound(ctx, webhookURL, from, to, body, s.o.AuthToken)
}

// InboundSignedWith is Inbound signed with another token (a forgery).
func (s *Server) InboundSignedWith(ctx context.Context, webhookURL, from, to, body, token string) (int, string, error) {
	return s.inbound(ctx, webhookURL, from, to, body, token)
}

func (s *Server) inbound(ctx context.Context, webhookURL, from, to, body, token string) (int, string, error) {
	sid := newSID("SM")
	form := url.Values{
		"AccountSid": {s.o.AccountSID}, "ApiVersion": {"2010-04-01"}, "MessageSid": {sid}, "SmsSid": {sid},
		"SmsMessageSid": {sid}, "SmsStatus": {"received"}, "From": {from}, "To": {to}, "Body": {body},
		"NumMedia": {"0"}, "NumSegments": {strconv.Itoa(segments(body))},
		"FromCountry": {"US"}, "ToCountry": {"US"},
	}
	switch strings.ToUpper(strings.TrimSpace(body)) {
	case "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT":
		form.Set("OptOutType", "STOP")
	case "START", "UNSTOP", "YES":
		form.Set("OptOutType", "START")
	case "HELP", "INFO":
		form.Set("OptOutType", "HELP")
	}
	code, answer, err := s.post(ctx, webhookURL, form, token)
	if err != nil {
		return 0, "", err
	}
	var twiml struct {
		Messages []string `xml:"Message"`
	}
	if code == http.StatusOK && xml.Unmarshal([]byte(answer), &twiml) == nil {
		for _, text := range twiml.Messages {
			s.add(Message{
				SID: newSID("SM"), AccountSID: s.o.AccountSID, To: from, From: to, Body: strings.TrimSpace(text),
				Direction: "outbound-reply", NumSegments: segments(text), DateCreated: time.Now().UTC(),
			})
		}
	}
	return code, answer, nil
}

func (s *Server) post(ctx context.Context, target string, form url.Values, token string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set("X-Twilio-Signature", Sign(token, target, form))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b), nil
}

// Sign computes Twilio's X-Twilio-Signature of a POST to fullURL with
// params: base64(HMAC-SHA1(token, fullURL + name1 + value1 + name2 + ...))
// with names sorted; a repeated name contributes each value in order.
func Sign(token, fullURL string, params url.Values) string {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range names {
		for _, v := range params[k] {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	m := hmac.New(sha1.New, []byte(token))
	m.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func newSID(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func e164(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// segments is a rough count for num_segments (GSM-7 lengths).
func segments(body string) int {
	n := utf8.RuneCountInString(body)
	if n <= 160 {
		return 1
	}
	return (n + 152) / 153
}
