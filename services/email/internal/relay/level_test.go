package relay_test

import (
	"errors"
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

// TestDeliverTLSLevels sends one message at each TLS level to relays that
// offer no STARTTLS, a certificate from a CA the client does not trust,
// a certificate for another host name, or a good certificate: a message
// that needs verified TLS crosses only the last, and nothing of it reaches
// the others (the server sees no MAIL FROM); an opportunistic one goes
// everywhere, and the transport says how.
func TestDeliverTLSLevels(t *testing.T) {
	ca := smtptest.NewCA(t)
	untrusted := smtptest.NewCA(t)
	otherHost := smtptest.NewCA(t, "relay.example.org")
	type want struct {
		Reason    string // "" when delivered
		Transport app.Transport
		Received  int
		TLS       bool // the message arrived over TLS
	}
	tests := []struct {
		name   string
		server smtptest.Options
		level  app.TLSLevel
		want   want
	}{
		{name: "verified, no STARTTLS", server: smtptest.Options{}, level: app.TLSVerified,
			want: want{Reason: app.ReasonNoSTARTTLS}},
		{name: "verified, untrusted certificate", server: smtptest.Options{CA: untrusted}, level: app.TLSVerified,
			want: want{Reason: app.ReasonTLSUnverified}},
		{name: "verified, certificate for another host", server: smtptest.Options{CA: otherHost}, level: app.TLSVerified,
			want: want{Reason: app.ReasonTLSUnverified}},
		{name: "verified, good certificate", server: smtptest.Options{CA: ca}, level: app.TLSVerified,
			want: want{Transport: app.Transport{TLSVersion: "TLS1.3", TLSVerified: true, NextHop: "localhost"}, Received: 1, TLS: true}},
		{name: "opportunistic, no STARTTLS", server: smtptest.Options{}, level: app.TLSOpportunistic,
			want: want{Transport: app.Transport{NextHop: "localhost"}, Received: 1}},
		{name: "opportunistic, untrusted certificate", server: smtptest.Options{CA: untrusted}, level: app.TLSOpportunistic,
			want: want{Transport: app.Transport{TLSVersion: "TLS1.3", NextHop: "localhost"}, Received: 1, TLS: true}},
		{name: "opportunistic, certificate for another host", server: smtptest.Options{CA: otherHost}, level: app.TLSOpportunistic,
			want: want{Transport: app.Transport{TLSVersion: "TLS1.3", NextHop: "localhost"}, Received: 1, TLS: true}},
		{name: "opportunistic, good certificate", server: smtptest.Options{CA: ca}, level: app.TLSOpportunistic,
			want: want{Transport: app.Transport{TLSVersion: "TLS1.3", TLSVerified: true, NextHop: "localhost"}, Received: 1, TLS: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, tt.server)
			r := newRelayWith(t, relay.Options{Host: "localhost", Port: srv.Port, RootCAs: ca.Pool})
			tr, err := r.Deliver(t.Context(), app.Outgoing{Message: message(), TLS: tt.level})
			got := want{Transport: tr}
			var de *app.DeliveryError
			switch {
			case errors.As(err, &de):
				got.Reason = de.Reason
			case err != nil:
				t.Fatalf("Deliver() = %v", err)
			}
			msgs := srv.Messages()
			got.Received = len(msgs)
			got.TLS = len(msgs) == 1 && msgs[0].TLS != nil
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
			if mail, _, _ := srv.Commands(); tt.want.Reason != "" && mail != 0 {
				t.Errorf("server saw %d MAIL FROM; nothing of a message may cross a connection below its level", mail)
			}
		})
	}
}

// TestSessionReuseByLevel: a kept session that did not verify carries
// opportunistic messages but never one that needs verified TLS; a verified
// session carries both.
func TestSessionReuseByLevel(t *testing.T) {
	ca := smtptest.NewCA(t)
	t.Run("unverified session", func(t *testing.T) {
		srv := smtptest.Start(t, smtptest.Options{CA: smtptest.NewCA(t)})
		r := newRelayWith(t, relay.Options{Host: "localhost", Port: srv.Port, RootCAs: ca.Pool, MaxIdle: 2})
		if _, err := r.Deliver(t.Context(), app.Outgoing{Message: message(), TLS: app.TLSOpportunistic}); err != nil {
			t.Fatalf("opportunistic Deliver() = %v", err)
		}
		_, err := r.Deliver(t.Context(), verified(messageN(2)))
		var de *app.DeliveryError
		if !errors.As(err, &de) || de.Reason != app.ReasonTLSUnverified {
			t.Fatalf("verified Deliver() after an unverified session = %v, want %s", err, app.ReasonTLSUnverified)
		}
		if got := srv.Connections(); got != 2 {
			t.Errorf("connections = %d, want 2 (the unverified session is not reused)", got)
		}
		if got := len(srv.Messages()); got != 1 {
			t.Errorf("server received %d messages, want only the opportunistic one", got)
		}
	})
	t.Run("verified session", func(t *testing.T) {
		srv := smtptest.Start(t, smtptest.Options{CA: ca})
		r := newRelayWith(t, relay.Options{Host: "localhost", Port: srv.Port, RootCAs: ca.Pool})
		if _, err := r.Deliver(t.Context(), app.Outgoing{Message: message(), TLS: app.TLSOpportunistic}); err != nil {
			t.Fatalf("opportunistic Deliver() = %v", err)
		}
		if _, err := r.Deliver(t.Context(), verified(messageN(2))); err != nil {
			t.Fatalf("verified Deliver() = %v", err)
		}
		if got := srv.Connections(); got != 1 {
			t.Errorf("connections = %d, want 1", got)
		}
	})
}

// TestDeliverRequireTLS: PHI asks for REQUIRETLS (RFC 8689) when the next
// hop offers it, and goes without it when it does not.
func TestDeliverRequireTLS(t *testing.T) {
	ca := smtptest.NewCA(t)
	tests := []struct {
		name    string
		offered bool
		give    app.Outgoing
		want    bool
	}{
		{name: "offered and asked", offered: true, give: app.Outgoing{TLS: app.TLSVerified, RequireTLS: true}, want: true},
		{name: "not offered", offered: false, give: app.Outgoing{TLS: app.TLSVerified, RequireTLS: true}, want: false},
		{name: "offered, not asked", offered: true, give: app.Outgoing{TLS: app.TLSOpportunistic}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{CA: ca, RequireTLS: tt.offered})
			r := newRelayWith(t, relay.Options{Host: "localhost", Port: srv.Port, RootCAs: ca.Pool})
			tt.give.Message = message()
			tr, err := r.Deliver(t.Context(), tt.give)
			if err != nil {
				t.Fatalf("Deliver() = %v", err)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("received %d messages, want 1", len(msgs))
			}
			if got := msgs[0].MailOptions.RequireTLS; got != tt.want {
				t.Errorf("server saw REQUIRETLS = %v, want %v", got, tt.want)
			}
			if tr.RequireTLS != tt.want {
				t.Errorf("transport RequireTLS = %v, want %v", tr.RequireTLS, tt.want)
			}
		})
	}
}

// TestUnsubscribeOnlyWhenAsked: List-Unsubscribe goes on a message only
// when the policy says so (marketing by default).
func TestUnsubscribeOnlyWhenAsked(t *testing.T) {
	ca := smtptest.NewCA(t)
	srv := smtptest.Start(t, smtptest.Options{CA: ca})
	r := newRelayWith(t, relay.Options{
		Host: "localhost", Port: srv.Port, RootCAs: ca.Pool,
		Unsubscribe: func(m app.Message) string { return "https://notify.example.org/u/t" },
	})
	for _, unsub := range []bool{false, true} {
		o := verified(message())
		o.Unsubscribe = unsub
		if _, err := r.Deliver(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("received %d messages", len(msgs))
	}
	for i, want := range []bool{false, true} {
		if got := strings.Contains(string(msgs[i].Data), "List-Unsubscribe:"); got != want {
			t.Errorf("message %d has List-Unsubscribe = %v, want %v", i, got, want)
		}
	}
}

// TestDeliverRequestsDSN: with DSNNotify, a next hop that offers DSN (RFC
// 3461) gets RET and ENVID (the message id) on MAIL FROM and NOTIFY on RCPT
// TO; one that does not gets neither, and neither does anyone when DSNs
// are not asked for.
func TestDeliverRequestsDSN(t *testing.T) {
	ca := smtptest.NewCA(t)
	tests := []struct {
		name       string
		offered    bool
		notify     []string
		ret        string
		wantRet    smtp.DSNReturn
		wantEnvID  bool
		wantNotify []smtp.DSNNotify
	}{
		{name: "offered, default", offered: true, notify: relay.DefaultDSNNotify, wantRet: smtp.DSNReturnHeaders, wantEnvID: true,
			wantNotify: []smtp.DSNNotify{smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed}},
		{name: "offered, FULL and every outcome", offered: true, notify: []string{"SUCCESS", "FAILURE", "DELAY"}, ret: "FULL",
			wantRet: smtp.DSNReturnFull, wantEnvID: true,
			wantNotify: []smtp.DSNNotify{smtp.DSNNotifySuccess, smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed}},
		{name: "offered, NEVER", offered: true, notify: []string{"NEVER"}, wantRet: smtp.DSNReturnHeaders, wantEnvID: true,
			wantNotify: []smtp.DSNNotify{smtp.DSNNotifyNever}},
		{name: "not offered", offered: false, notify: relay.DefaultDSNNotify},
		{name: "offered, not asked", offered: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{CA: ca, DSN: tt.offered})
			r := newRelayWith(t, relay.Options{Host: "localhost", Port: srv.Port, RootCAs: ca.Pool, DSNNotify: tt.notify, DSNRet: tt.ret})
			m := message()
			if _, err := r.Deliver(t.Context(), verified(m)); err != nil {
				t.Fatalf("Deliver() = %v", err)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 || len(msgs[0].RcptOptions) != 1 {
				t.Fatalf("received %d messages, want 1 with 1 recipient", len(msgs))
			}
			mo := msgs[0].MailOptions
			wantEnvID := ""
			if tt.wantEnvID {
				wantEnvID = m.ID
			}
			if mo.Return != tt.wantRet || mo.EnvelopeID != wantEnvID {
				t.Errorf("MAIL FROM RET=%q ENVID=%q, want %q %q", mo.Return, mo.EnvelopeID, tt.wantRet, wantEnvID)
			}
			if diff := cmp.Diff(tt.wantNotify, msgs[0].RcptOptions[0].Notify); diff != "" {
				t.Errorf("RCPT TO NOTIFY (-want +got):\n%s", diff)
			}
			if o := msgs[0].RcptOptions[0]; o.OriginalRecipient != "" {
				t.Errorf("RCPT TO carries ORCPT")
			}
		})
	}
	for _, bad := range [][]string{{"NEVER", "FAILURE"}, {"FAILURE", "FAILURE"}, {"failure"}, {"BOUNCE"}} {
		if _, err := relay.New(relay.Options{Host: "localhost", Port: 25, From: &netmail.Address{Address: "a@b.example"}, Timeout: time.Second, DSNNotify: bad}); err == nil {
			t.Errorf("New() with NOTIFY %v = nil error", bad)
		}
	}
}
