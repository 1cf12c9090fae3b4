package inbox

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/wneessen/go-mail"

	"github.com/carenotify/carenotify/deploy/devstack/devca"
	"github.com/carenotify/carenotify/pkg/log/logtest"
)

const (
	testFrom    = "noreply@clinic.example.org"
	testTo      = "jeanne.exemple@example.com"
	testSubject = "Rappel: rendez-vous à 9h"
	testText    = "Bonjour Jeanne,\nRappel : rendez-vous à 9h au service de cardiologie.\n"
	testHTML    = "<p>Bonjour Jeanne,</p>\n<p>Rappel&nbsp;: rendez-vous à 9h au service de cardiologie.</p>\n"
)

type testSMTP struct {
	addr string
	ca   *devca.CA
	logs *logtest.Buffer
}

// startSMTP runs a real SMTP server for in on a free port, with a dev CA
// certificate for STARTTLS.
func startSMTP(t *testing.T, in *Inbox, requireTLS bool) testSMTP {
	t.Helper()
	ca, err := devca.Ensure(t.TempDir(), []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	srv := in.NewSMTPServer(ln.Addr().String(), ca.ServerTLS, requireTLS, slog.New(slog.NewJSONHandler(logs, nil)))
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return testSMTP{addr: ln.Addr().String(), ca: ca, logs: logs}
}

func (s testSMTP) client(t *testing.T, policy mail.TLSPolicy, opts ...mail.Option) *mail.Client {
	t.Helper()
	host, port, err := net.SplitHostPort(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	portNum, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	c, err := mail.NewClient(host, append([]mail.Option{
		mail.WithPort(portNum),
		mail.WithTLSPolicy(policy),
		mail.WithTLSConfig(&tls.Config{RootCAs: s.ca.Pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}),
		mail.WithTimeout(10 * time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testMsg(t *testing.T) *mail.Msg {
	t.Helper()
	m := mail.NewMsg()
	if err := m.From("Clinique Exemple <" + testFrom + ">"); err != nil {
		t.Fatal(err)
	}
	if err := m.To(testTo); err != nil {
		t.Fatal(err)
	}
	m.Subject(testSubject)
	m.SetBodyString(mail.TypeTextPlain, testText)
	m.AddAlternativeString(mail.TypeTextHTML, testHTML)
	return m
}

func waitFor(t *testing.T, in *Inbox, to string) Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	m, err := in.Wait(ctx, func(m Message) bool { return len(m.To) == 1 && m.To[0] == to })
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// wantReceived is the test message as the inbox should show it.
func wantReceived(tlsVersion string) Message {
	return Message{
		Kind:       KindEmail,
		From:       testFrom,
		To:         []string{testTo},
		Subject:    testSubject,
		Text:       testText,
		HTML:       testHTML,
		TLS:        tlsVersion != "",
		TLSVersion: tlsVersion,
		DKIM:       DKIMNone,
	}
}

var ignoreVarying = cmpopts.IgnoreFields(Message{}, "ID", "ReceivedAt", "Headers", "Size", "Raw")

func TestSMTPReceivesEmailOverSTARTTLS(t *testing.T) {
	in := New()
	s := startSMTP(t, in, true)
	m := testMsg(t)
	if err := s.client(t, mail.TLSMandatory).DialAndSend(m); err != nil {
		t.Fatal(err)
	}
	want := wantReceived("TLS 1.3")

	// Through Wait.
	got := waitFor(t, in, testTo)
	if diff := cmp.Diff(want, got, ignoreVarying); diff != "" {
		t.Errorf("Wait (-want +got):\n%s", diff)
	}
	if !bytes.Contains(got.Raw, []byte("Subject: =?UTF-8?")) {
		t.Errorf("subject was not sent as RFC 2047 encoded words:\n%s", got.Raw)
	}
	if diff := cmp.Diff(m.GetGenHeader(mail.HeaderMessageID), got.Headers["Message-Id"]); diff != "" {
		t.Errorf("Message-Id (-want +got):\n%s", diff)
	}

	// Through Messages.
	if diff := cmp.Diff([]Message{want}, in.Messages(), ignoreVarying); diff != "" {
		t.Errorf("Messages (-want +got):\n%s", diff)
	}

	// Through the JSON API, filtered on the recipient.
	srv := httptest.NewServer(in.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/messages?to=" + testTo)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct{ Messages []Message }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Message{want}, list.Messages, ignoreVarying); diff != "" {
		t.Errorf("GET /api/messages (-want +got):\n%s", diff)
	}

	// Logs carry ids and sizes, never addresses or contents.
	logs := s.logs.String()
	if !strings.Contains(logs, got.ID) {
		t.Errorf("logs do not name message %s:\n%s", got.ID, logs)
	}
	for _, phi := range []string{testTo, testFrom, "Rappel", "Jeanne"} {
		if strings.Contains(logs, phi) {
			t.Errorf("logs contain %q:\n%s", phi, logs)
		}
	}
}

func TestSMTPTLSPolicy(t *testing.T) {
	type give struct {
		requireTLS bool
		policy     mail.TLSPolicy
	}
	tests := []struct {
		name     string
		give     give
		wantCode int // SMTP reply code of the refusal; 0 when accepted
		want     string
	}{
		{name: "required, client starts tls", give: give{true, mail.TLSMandatory}, want: "TLS 1.3"},
		{name: "required, client never starts tls", give: give{true, mail.NoTLS}, wantCode: 530},
		{name: "optional, client never starts tls", give: give{false, mail.NoTLS}, want: ""},
		{name: "optional, opportunistic client", give: give{false, mail.TLSOpportunistic}, want: "TLS 1.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := New()
			s := startSMTP(t, in, tt.give.requireTLS)
			err := s.client(t, tt.give.policy).DialAndSend(testMsg(t))
			if tt.wantCode != 0 {
				var sendErr *mail.SendError
				if !errors.As(err, &sendErr) {
					t.Fatalf("err = %v, want a *mail.SendError", err)
				}
				if diff := cmp.Diff([]any{tt.wantCode, "5.7.0"}, []any{sendErr.ErrorCode(), sendErr.EnhancedStatusCode()}); diff != "" {
					t.Errorf("reply (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff([]Message{}, in.Messages()); diff != "" {
					t.Errorf("refused message stored (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantReceived(tt.want), waitFor(t, in, testTo), ignoreVarying); diff != "" {
				t.Errorf("received (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSMTPAuthPlainAfterSTARTTLS(t *testing.T) {
	in := New()
	s := startSMTP(t, in, true)
	c := s.client(t, mail.TLSMandatory,
		mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername("email-service"), mail.WithPassword("any"))
	if err := c.DialAndSend(testMsg(t)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantReceived("TLS 1.3"), waitFor(t, in, testTo), ignoreVarying); diff != "" {
		t.Errorf("received (-want +got):\n%s", diff)
	}
}

// TestSMTPReplies checks the server's exact replies on the wire, before
// STARTTLS.
func TestSMTPReplies(t *testing.T) {
	type give struct {
		requireTLS bool
		cmd        string
	}
	type reply struct {
		Code int
		Msg  string
	}
	tests := []struct {
		name string
		give give
		want reply
	}{
		{
			name: "ehlo offers starttls, not auth",
			give: give{false, "EHLO client.example.org"},
			want: reply{250, "Hello client.example.org\nPIPELINING\n8BITMIME\nENHANCEDSTATUSCODES\nCHUNKING\nSTARTTLS\nSIZE 10485760\nLIMITS RCPTMAX=100"},
		},
		{
			name: "mail before starttls when tls is required",
			give: give{true, "MAIL FROM:<" + testFrom + ">"},
			want: reply{530, "5.7.0 Must issue a STARTTLS command first"},
		},
		{
			name: "auth before starttls",
			give: give{false, "AUTH PLAIN AGVtYWlsAGFueQ=="},
			want: reply{523, "5.7.10 TLS is required"},
		},
		{
			name: "message over 10 MiB",
			give: give{false, "MAIL FROM:<" + testFrom + "> SIZE=10485761"},
			want: reply{552, "5.3.4 Max message size exceeded"},
		},
		{
			name: "mail accepted when tls is optional",
			give: give{false, "MAIL FROM:<" + testFrom + ">"},
			want: reply{250, "2.0.0 Roger, accepting mail from <" + testFrom + ">"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSMTP(t, New(), tt.give.requireTLS)
			c, err := textproto.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, _, err := c.ReadResponse(220); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(tt.give.cmd, "EHLO") {
				if _, err := c.Cmd("EHLO client.example.org"); err != nil {
					t.Fatal(err)
				}
				if _, _, err := c.ReadResponse(250); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.Cmd("%s", tt.give.cmd); err != nil {
				t.Fatal(err)
			}
			var got reply
			got.Code, got.Msg, _ = c.ReadResponse(0)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
		})
	}
}
