package relay_test

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/relay"
	"github.com/carenotify/carenotify/services/email/internal/smtptest"
)

const (
	testID = "0193a5b2-7c1d-7e2f-8a9b-0c1d2e3f4a5b"
	rcpt   = "zz.canary.patient@example.org"
)

func newRelay(t *testing.T, ca *smtptest.CA, host string, port int, user, pass string) *relay.Relay {
	t.Helper()
	return newRelayWith(t, relay.Options{Host: host, Port: port, Username: user, Password: pass, RootCAs: ca.Pool})
}

// newRelayWith returns a Relay with o, From and Timeout filled in, closed
// when the test ends.
func newRelayWith(t testing.TB, o relay.Options) *relay.Relay {
	t.Helper()
	from, err := netmail.ParseAddress("Carenotify <noreply@carenotify.localhost>")
	if err != nil {
		t.Fatal(err)
	}
	o.From, o.Timeout = from, 5*time.Second
	r, err := relay.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func message() app.Message {
	return app.Message{
		ID: testID, Tenant: "demo", IdempotencyKey: "k1", To: rcpt,
		Subject: "Your appointment", TextBody: "See you Tuesday.", HTMLBody: "<p>See you <b>Tuesday</b>.</p>",
		ExpiresAt: time.Now().Add(time.Hour),
	}
}

// verified returns m as an outgoing message that needs verified TLS (PHI).
func verified(m app.Message) app.Outgoing { return app.Outgoing{Message: m, TLS: app.TLSVerified} }

func TestDeliverOverVerifiedTLS(t *testing.T) {
	ca := smtptest.NewCA(t)
	srv := smtptest.Start(t, smtptest.Options{CA: ca, Username: "svc", Password: "s3cret"})
	r := newRelay(t, ca, "localhost", srv.Port, "svc", "s3cret")

	tr, err := r.Deliver(t.Context(), verified(message()))
	if err != nil {
		t.Fatalf("Deliver() = %v", err)
	}
	want := app.Transport{TLSVersion: "TLS1.3", TLSVerified: true, NextHop: "localhost"}
	if diff := cmp.Diff(want, tr); diff != "" {
		t.Errorf("transport (-want +got):\n%s", diff)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server received %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if got.TLS == nil {
		t.Fatal("message arrived without TLS")
	}
	if diff := cmp.Diff([]string{rcpt}, got.To); diff != "" {
		t.Errorf("RCPT TO (-want +got):\n%s", diff)
	}
	pm, err := netmail.ReadMessage(strings.NewReader(string(got.Data)))
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{}
	for _, k := range []string{"From", "To", "Subject", "Message-Id", "X-Carenotify-Message-Id", "Auto-Submitted"} {
		headers[k] = pm.Header.Get(k)
	}
	wantHeaders := map[string]string{
		"From":                    `"Carenotify" <noreply@carenotify.localhost>`,
		"To":                      "<" + rcpt + ">",
		"Subject":                 "Your appointment",
		"Message-Id":              "<" + testID + "@carenotify.localhost>",
		"X-Carenotify-Message-Id": testID,
		"Auto-Submitted":          "auto-generated",
	}
	if diff := cmp.Diff(wantHeaders, headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if _, err := pm.Header.Date(); err != nil {
		t.Errorf("Date header: %v", err)
	}
	bodies := alternatives(t, pm)
	wantBodies := map[string]string{"text/plain": "See you Tuesday.", "text/html": "<p>See you <b>Tuesday</b>.</p>"}
	if diff := cmp.Diff(wantBodies, bodies); diff != "" {
		t.Errorf("bodies (-want +got):\n%s", diff)
	}
}

// alternatives returns the parts of a multipart/alternative message by
// content type, decoded and trimmed.
func alternatives(t *testing.T, pm *netmail.Message) map[string]string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(pm.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type = %q, %v; want multipart/alternative", pm.Header.Get("Content-Type"), err)
	}
	out := map[string]string{}
	mr := multipart.NewReader(pm.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // decodes quoted-printable
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		out[ct] = strings.TrimSpace(string(b))
	}
}

func TestDeliverFailures(t *testing.T) {
	ca := smtptest.NewCA(t)
	otherCA := smtptest.NewCA(t)
	wrongName := smtptest.NewCA(t, "relay.example.org")
	refused := func(n int) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user " + rcpt}
	}
	deferred := func(n int) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later " + rcpt}
	}
	type want struct {
		Permanent        bool
		Reason           string
		Code             int
		Mail, Rcpt, Data int
	}
	tests := []struct {
		name string
		give smtptest.Options
		// trust is the CA the relay trusts; user its username.
		trust *smtptest.CA
		user  string
		want  want
	}{
		{name: "no STARTTLS", give: smtptest.Options{}, trust: ca, want: want{Reason: app.ReasonNoSTARTTLS}},
		{name: "untrusted certificate", give: smtptest.Options{CA: otherCA}, trust: ca, want: want{Reason: app.ReasonTLSUnverified}},
		{name: "certificate for another host", give: smtptest.Options{CA: wrongName}, trust: wrongName, want: want{Reason: app.ReasonTLSUnverified}},
		{name: "550 on RCPT", give: smtptest.Options{CA: ca, Rcpt: refused}, trust: ca, want: want{Permanent: true, Reason: app.ReasonSMTP5xx, Code: 550, Mail: 1, Rcpt: 1}},
		{name: "451 on RCPT", give: smtptest.Options{CA: ca, Rcpt: deferred}, trust: ca, want: want{Reason: app.ReasonSMTP4xx, Code: 451, Mail: 1, Rcpt: 1}},
		{name: "wrong password", give: smtptest.Options{CA: ca, Username: "svc", Password: "right"}, trust: ca, user: "svc", want: want{Reason: app.ReasonAuth, Code: 535}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, tt.give)
			r := newRelay(t, tt.trust, "localhost", srv.Port, tt.user, "wrong")
			_, err := r.Deliver(t.Context(), verified(message()))
			var de *app.DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("Deliver() = %v, want *app.DeliveryError", err)
			}
			mail, rcpts, data := srv.Commands()
			got := want{Permanent: de.Permanent, Reason: de.Reason, Code: de.Code, Mail: mail, Rcpt: rcpts, Data: data}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), rcpt) {
				t.Errorf("error %q contains the recipient", err)
			}
		})
	}
}

func TestDeliverConnectionRefused(t *testing.T) {
	ca := smtptest.NewCA(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	_, err = newRelay(t, ca, "127.0.0.1", port, "", "").Deliver(t.Context(), verified(message()))
	var de *app.DeliveryError
	if !errors.As(err, &de) || de.Reason != app.ReasonConnect || de.Permanent {
		t.Errorf("Deliver() = %v, want a temporary %q error", err, app.ReasonConnect)
	}
}

func TestDeliverCancelled(t *testing.T) {
	ca := smtptest.NewCA(t)
	srv := smtptest.Start(t, smtptest.Options{CA: ca})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := newRelay(t, ca, "localhost", srv.Port, "", "").Deliver(ctx, verified(message()))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Deliver() = %v, want context.Canceled", err)
	}
}

// timeNowPlus is a second ahead: OpenPGP creation times are whole seconds.
func timeNowPlus() time.Time { return time.Now().Add(time.Second) }
