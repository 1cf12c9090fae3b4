package relay_test

import (
	"errors"
	"fmt"
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

// messageN returns the n-th test message; its id ends in n.
func messageN(n int) app.Message {
	m := message()
	m.ID = fmt.Sprintf("0193a5b2-7c1d-7e2f-8a9b-%012d", n)
	return m
}

// receivedIDs returns the X-Carenotify-Message-Id of every message the
// server accepted, in order.
func receivedIDs(t *testing.T, srv *smtptest.Server) []string {
	t.Helper()
	var ids []string
	for _, m := range srv.Messages() {
		pm, err := netmail.ReadMessage(strings.NewReader(string(m.Data)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, pm.Header.Get(relay.HeaderMessageID))
	}
	return ids
}

func TestDeliverReusesConnections(t *testing.T) {
	tests := []struct {
		name      string
		give      relay.Options
		messages  int
		pause     time.Duration // between messages
		wantConns int
	}{
		{name: "one session carries all", messages: 10, wantConns: 1},
		{name: "closed after the per-connection limit", give: relay.Options{MaxMessagesPerConnection: 4}, messages: 10, wantConns: 3},
		{name: "closed when idle too long", give: relay.Options{IdleTimeout: 20 * time.Millisecond}, messages: 3, pause: 100 * time.Millisecond, wantConns: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := smtptest.NewCA(t)
			srv := smtptest.Start(t, smtptest.Options{CA: ca, Username: "svc", Password: "s3cret"})
			o := tt.give
			o.Host, o.Port, o.Username, o.Password, o.RootCAs = "localhost", srv.Port, "svc", "s3cret", ca.Pool
			r := newRelayWith(t, o)
			var want []string
			for i := range tt.messages {
				if i > 0 {
					time.Sleep(tt.pause)
				}
				m := messageN(i)
				tr, err := r.Deliver(t.Context(), verified(m))
				if err != nil {
					t.Fatalf("Deliver(%d) = %v", i, err)
				}
				if !tr.TLSVerified {
					t.Fatalf("Deliver(%d) transport = %+v, want verified TLS", i, tr)
				}
				want = append(want, m.ID)
			}
			if diff := cmp.Diff(want, receivedIDs(t, srv)); diff != "" {
				t.Errorf("received (-want +got):\\n%s", diff)
			}
			for i, m := range srv.Messages() {
				if m.TLS == nil {
					t.Errorf("message %d arrived without TLS", i)
				}
			}
			if got := srv.Connections(); got != tt.wantConns {
				t.Errorf("connections = %d, want %d", got, tt.wantConns)
			}
		})
	}
}

func TestDeliverReconnects(t *testing.T) {
	tests := []struct {
		name string
		give smtptest.Options
		// want is the outcome of delivering messages 0, 1, 2 in turn and
		// then retrying each deferred one once: the reason of each first
		// attempt ("" when sent).
		want      []string
		wantConns int
	}{
		{
			name:      "dropped while idle: resent at once on a new connection",
			give:      smtptest.Options{DropOnMail: func(n int) bool { return n == 2 }},
			want:      []string{"", "", ""},
			wantConns: 2,
		},
		{
			name: "421 to MAIL FROM: resent at once on a new connection",
			give: smtptest.Options{Mail: func(n int) *smtp.SMTPError {
				if n == 2 {
					return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "closing " + rcpt}
				}
				return nil
			}},
			want:      []string{"", "", ""},
			wantConns: 2,
		},
		{
			name:      "dropped during DATA: deferred, sent by the retry",
			give:      smtptest.Options{DropOnData: func(n int) bool { return n == 2 }},
			want:      []string{"", app.ReasonConnect, ""},
			wantConns: 2,
		},
		{
			name: "451 to RCPT: deferred, session kept",
			give: smtptest.Options{Rcpt: func(n int) *smtp.SMTPError {
				if n == 2 {
					return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "later " + rcpt}
				}
				return nil
			}},
			want:      []string{"", app.ReasonSMTP4xx, ""},
			wantConns: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := smtptest.NewCA(t)
			o := tt.give
			o.CA = ca
			srv := smtptest.Start(t, o)
			r := newRelay(t, ca, "localhost", srv.Port, "", "")
			var got, deferred []string
			for i := range 3 {
				m := messageN(i)
				_, err := r.Deliver(t.Context(), verified(m))
				var de *app.DeliveryError
				switch {
				case err == nil:
					got = append(got, "")
				case errors.As(err, &de) && !de.Permanent:
					got = append(got, de.Reason)
					deferred = append(deferred, m.ID)
					if strings.Contains(err.Error(), rcpt) {
						t.Errorf("error %q contains the recipient", err)
					}
				default:
					t.Fatalf("Deliver(%d) = %v", i, err)
				}
			}
			for _, id := range deferred {
				m := message()
				m.ID = id
				if _, err := r.Deliver(t.Context(), verified(m)); err != nil {
					t.Fatalf("retry of %s = %v", id, err)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("first attempts (-want +got):\\n%s", diff)
			}
			// Every message exactly once, none lost.
			ids := receivedIDs(t, srv)
			seen := map[string]int{}
			for _, id := range ids {
				seen[id]++
			}
			wantSeen := map[string]int{messageN(0).ID: 1, messageN(1).ID: 1, messageN(2).ID: 1}
			if diff := cmp.Diff(wantSeen, seen); diff != "" {
				t.Errorf("messages received (-want +got):\\n%s", diff)
			}
			if got := srv.Connections(); got != tt.wantConns {
				t.Errorf("connections = %d, want %d", got, tt.wantConns)
			}
		})
	}
}
