package app_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/carenotify/carenotify/pkg/audit/audittest"
	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/bus/bustest"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/pkg/envelope/envelopetest"
	"github.com/carenotify/carenotify/pkg/store/storetest"
	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/metrics"
	"github.com/carenotify/carenotify/services/email/internal/queue"
	"github.com/carenotify/carenotify/services/email/internal/records"
	"github.com/carenotify/carenotify/services/email/internal/relay"
	"github.com/carenotify/carenotify/services/email/internal/smtptest"
)

// outcome is what one Process call leaves behind.
type outcome struct {
	Err                string // "", "retry" or "permanent"
	Status             app.Status
	Reason             string
	Attempts           int
	Mail, Data         int      // SMTP commands the relay saw
	Events             []string // statuses published to DELIVERY
	TLSVerifiedOnEvent bool
}

func errKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, app.ErrPermanent):
		return "permanent"
	}
	return "retry"
}

func TestWorkerProcess(t *testing.T) {
	ca := smtptest.NewCA(t)
	_, js := bustest.Connect(t, bustest.Start(t))
	if err := bus.EnsureStreams(t.Context(), js, queue.Streams(1)...); err != nil {
		t.Fatal(err)
	}
	rdb := storetest.Client(t)
	st := records.New(rdb)
	supps := records.NewSuppressions(rdb, []byte("0123456789abcdef0123456789abcdef"))
	aw, _ := audittest.Writer(t, js, "email")
	sealer := envelopetest.Sealer(t)
	refuse := func(code int) func(int) *smtp.SMTPError {
		return func(int) *smtp.SMTPError { return &smtp.SMTPError{Code: code, Message: "no"} }
	}
	refuseWith := func(code int, enhanced smtp.EnhancedCode) func(int) *smtp.SMTPError {
		return func(int) *smtp.SMTPError { return &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: "no"} }
	}

	tests := []struct {
		name string
		// relay is how the test relay behaves.
		relay smtptest.Options
		// record is the status stored before Process; "" stores none.
		record app.Status
		// expiresIn is the message's expiry from now; clock shifts the worker's clock.
		expiresIn, clock time.Duration
		// security is the message's; policy the tenant's (DefaultPolicy when zero).
		security app.Security
		policy   app.Policy
		// suppressed puts the recipient on the list before Process;
		// wantSuppressed is whether it is there after.
		suppressed, wantSuppressed bool
		want                       outcome
	}{
		{
			name: "sent", relay: smtptest.Options{CA: ca}, record: app.StatusQueued, expiresIn: time.Hour,
			want: outcome{Status: app.StatusSent, Attempts: 1, Mail: 1, Data: 1, Events: []string{"sent"}, TLSVerifiedOnEvent: true},
		},
		{
			name: "PHI, relay without STARTTLS: held", relay: smtptest.Options{}, record: app.StatusQueued, expiresIn: time.Hour,
			want: outcome{Err: "permanent", Status: app.StatusHeld, Reason: app.ReasonNoSTARTTLS, Attempts: 1, Events: []string{"held"}},
		},
		{
			name: "PHI, untrusted certificate: held", relay: smtptest.Options{CA: smtptest.NewCA(t)}, record: app.StatusQueued, expiresIn: time.Hour,
			want: outcome{Err: "permanent", Status: app.StatusHeld, Reason: app.ReasonTLSUnverified, Attempts: 1, Events: []string{"held"}},
		},
		{
			name: "PHI, untrusted certificate, policy defers", relay: smtptest.Options{CA: smtptest.NewCA(t)}, record: app.StatusQueued, expiresIn: time.Hour,
			policy: func() app.Policy { p := app.DefaultPolicy(); p.Unverified = app.UnverifiedDefer; return p }(),
			want:   outcome{Err: "retry", Status: app.StatusDeferred, Reason: app.ReasonTLSUnverified, Attempts: 1, Events: []string{"deferred"}},
		},
		{
			name: "no-phi, relay without STARTTLS: sent in clear", relay: smtptest.Options{}, record: app.StatusQueued, expiresIn: time.Hour,
			security: app.SecurityNoPHI,
			want:     outcome{Status: app.StatusSent, Attempts: 1, Mail: 1, Data: 1, Events: []string{"sent"}},
		},
		{
			name: "no-phi, policy wants verified TLS: held", relay: smtptest.Options{}, record: app.StatusQueued, expiresIn: time.Hour,
			security: app.SecurityNoPHI, policy: func() app.Policy { p := app.DefaultPolicy(); p.NoPHITLS = app.TLSNameVerified; return p }(),
			want: outcome{Err: "permanent", Status: app.StatusHeld, Reason: app.ReasonNoSTARTTLS, Attempts: 1, Events: []string{"held"}},
		},
		{
			name: "PHI, encryption required and no key: held untried", relay: smtptest.Options{CA: ca}, record: app.StatusQueued, expiresIn: time.Hour,
			policy: func() app.Policy { p := app.DefaultPolicy(); p.Encryption = app.EncryptRequired; return p }(),
			want:   outcome{Err: "permanent", Status: app.StatusHeld, Reason: app.ReasonNoRecipientKey, Events: []string{"held"}},
		},
		{
			name: "550 on RCPT", relay: smtptest.Options{CA: ca, Rcpt: refuse(550)}, record: app.StatusQueued, expiresIn: time.Hour,
			want: outcome{Err: "permanent", Status: app.StatusBounced, Reason: app.ReasonSMTP5xx, Attempts: 1, Mail: 1, Events: []string{"bounced"}},
		},
		{
			name: "550 5.1.1 on RCPT: bounced and suppressed", relay: smtptest.Options{CA: ca, Rcpt: refuseWith(550, smtp.EnhancedCode{5, 1, 1})},
			record: app.StatusQueued, expiresIn: time.Hour, wantSuppressed: true,
			want: outcome{Err: "permanent", Status: app.StatusBounced, Reason: app.ReasonSMTP5xx, Attempts: 1, Mail: 1, Events: []string{"bounced"}},
		},
		{
			name: "554 5.7.1 relaying denied on RCPT: bounced, nobody suppressed", relay: smtptest.Options{CA: ca, Rcpt: refuseWith(554, smtp.EnhancedCode{5, 7, 1})},
			record: app.StatusQueued, expiresIn: time.Hour,
			want: outcome{Err: "permanent", Status: app.StatusBounced, Reason: app.ReasonSMTP5xx, Attempts: 1, Mail: 1, Events: []string{"bounced"}},
		},
		{
			name: "recipient suppressed after queueing: failed untried", relay: smtptest.Options{CA: ca}, record: app.StatusQueued, expiresIn: time.Hour,
			suppressed: true, wantSuppressed: true,
			want: outcome{Err: "permanent", Status: app.StatusFailed, Reason: app.ReasonSuppressed, Events: []string{"failed"}},
		},
		{
			name: "451 on RCPT", relay: smtptest.Options{CA: ca, Rcpt: refuse(451)}, record: app.StatusQueued, expiresIn: time.Hour,
			want: outcome{Err: "retry", Status: app.StatusDeferred, Reason: app.ReasonSMTP4xx, Attempts: 1, Mail: 1, Events: []string{"deferred"}},
		},
		{
			name: "451 and the next attempt would be too late", relay: smtptest.Options{CA: ca, Rcpt: refuse(451)}, record: app.StatusQueued, expiresIn: 500 * time.Millisecond,
			want: outcome{Err: "permanent", Status: app.StatusFailed, Reason: app.ReasonExpired, Attempts: 1, Mail: 1, Events: []string{"failed"}},
		},
		{
			name: "expired before the first attempt", relay: smtptest.Options{CA: ca}, record: app.StatusQueued, expiresIn: time.Hour, clock: 2 * time.Hour,
			want: outcome{Err: "permanent", Status: app.StatusFailed, Reason: app.ReasonExpired, Events: []string{"failed"}},
		},
		{
			name: "already sent", relay: smtptest.Options{CA: ca}, record: app.StatusSent, expiresIn: time.Hour,
			want: outcome{Status: app.StatusSent, Events: []string{"sent"}},
		},
		{
			name: "no record", relay: smtptest.Options{CA: ca}, record: "", expiresIn: time.Hour,
			want: outcome{Err: "permanent"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := "worker-" + string(rune('a'+i))
			srv := smtptest.Start(t, tt.relay)
			from, _ := netmail.ParseAddress("noreply@carenotify.localhost")
			mailer, err := relay.New(relay.Options{Host: "localhost", Port: srv.Port, RootCAs: ca.Pool, From: from, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			var policies app.Policies
			if tt.policy.Encryption != "" {
				policies.Default = tt.policy
			}
			w := app.NewWorker(app.WorkerOptions{
				Store: st, Events: queue.NewEvents(js), Mailer: mailer, Auditor: aw, Policies: policies,
				Holder: queue.NewHeld(js, sealer), Suppressions: supps,
				Metrics: metrics.New(prometheus.NewRegistry()), Logger: slog.New(slog.DiscardHandler),
				LockTTL: time.Minute,
				Backoff: func(uint64) time.Duration { return time.Second },
				Now:     func() time.Time { return time.Now().Add(tt.clock) },
			})
			m := app.Message{
				ID: fmt.Sprintf("0193a5b2-7c1d-7e2f-8a9b-%012x", i), Tenant: tenant, IdempotencyKey: "k",
				To: "patient@example.org", Subject: "s", TextBody: "b", ExpiresAt: now.Add(tt.expiresIn),
				Security: tt.security,
			}
			if tt.record != "" {
				rec := app.Record{ID: m.ID, Tenant: tenant, Status: tt.record, UpdatedAt: now, ExpiresAt: m.ExpiresAt, Committed: true}
				if err := st.CreateRecord(t.Context(), rec, time.Hour); err != nil {
					t.Fatal(err)
				}
			}

			hash := supps.Hash(tenant, m.To)
			if tt.suppressed {
				e := app.Suppression{Tenant: tenant, AddressHash: hash, Reason: app.SuppressedComplaint, Source: app.SourceARF, At: now}
				if _, err := supps.Add(t.Context(), e); err != nil {
					t.Fatal(err)
				}
			}

			perr := w.Process(t.Context(), app.Delivery{Message: m, NumDelivered: 1})

			e, serr := supps.Get(t.Context(), tenant, hash)
			if got := serr == nil; got != tt.wantSuppressed {
				t.Errorf("suppressed after Process = %v (%v), want %v", got, serr, tt.wantSuppressed)
			}
			if tt.wantSuppressed && !tt.suppressed {
				want := app.Suppression{Tenant: tenant, AddressHash: hash, Reason: app.SuppressedHardBounce, Source: app.SourceSMTP, MessageID: m.ID, Status: "5.1.1"}
				if diff := cmp.Diff(want, e, cmpopts.IgnoreFields(app.Suppression{}, "At")); diff != "" {
					t.Errorf("suppression (-want +got):\n%s", diff)
				}
			}

			rec, _ := st.Record(t.Context(), tenant, m.ID)
			mail, _, data := srv.Commands()
			events, verified := deliveryEvents(t, js, tenant)
			got := outcome{
				Err: errKind(perr), Status: rec.Status, Reason: rec.Reason, Attempts: rec.Attempts,
				Mail: mail, Data: data, Events: events, TLSVerifiedOnEvent: verified,
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
			if held := heldCopy(t, js, sealer, m); held != (tt.want.Status == app.StatusHeld) {
				t.Errorf("held copy in %s = %v, want %v", queue.StreamHeld, held, !held)
			}
		})
	}
}

// heldCopy reports whether EMAIL_HELD holds m, sealed: it must open with
// m's held binding and give back its recipient.
func heldCopy(t *testing.T, js jetstream.JetStream, sealer *envelope.Sealer, m app.Message) bool {
	t.Helper()
	stream, err := js.Stream(t.Context(), queue.StreamHeld)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetLastMsgForSubject(t.Context(), "held.email."+m.Tenant)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw.Data), m.To) {
		t.Errorf("held copy holds the recipient in clear")
	}
	plain, err := sealer.Open(t.Context(), raw.Data, queue.HeldBinding(m.Tenant, m.ID))
	if err != nil {
		t.Fatalf("open held copy: %v", err)
	}
	if !strings.Contains(string(plain), m.To) {
		t.Errorf("held copy does not hold the message")
	}
	if raw.Header.Get(bus.HeaderReason) == "" {
		t.Errorf("held copy has no %s header", bus.HeaderReason)
	}
	return true
}

// deliveryEvents lists the statuses published for tenant, and whether the
// sent event says the TLS certificate was verified.
func deliveryEvents(t *testing.T, js jetstream.JetStream, tenant string) ([]string, bool) {
	t.Helper()
	var statuses []string
	verified := false
	for _, s := range []app.Status{app.StatusQueued, app.StatusSent, app.StatusDeferred, app.StatusBounced, app.StatusFailed, app.StatusHeld} {
		ev, ok := lastEvent(t, js, tenant, string(s))
		if !ok {
			continue
		}
		statuses = append(statuses, string(s))
		verified = verified || ev.GetTransport().GetTlsVerified()
	}
	return statuses, verified
}

func TestWorkerDoesNotRunTwiceAtOnce(t *testing.T) {
	st := records.New(storetest.Client(t))
	ctx := context.Background()
	unlock, ok, err := st.Lock(ctx, "lock-test", "0193a5b2-7c1d-7e2f-8a9b-0c1d2e3f4a59", time.Minute)
	if err != nil || !ok {
		t.Fatalf("Lock() = %v, %v", ok, err)
	}
	defer unlock(ctx)
	w := app.NewWorker(app.WorkerOptions{
		Store: st, Metrics: metrics.New(prometheus.NewRegistry()), Logger: slog.New(slog.DiscardHandler), LockTTL: time.Minute,
	})
	m := app.Message{ID: "0193a5b2-7c1d-7e2f-8a9b-0c1d2e3f4a59", Tenant: "lock-test"}
	if err := w.Process(ctx, app.Delivery{Message: m, NumDelivered: 1}); errKind(err) != "retry" {
		t.Errorf("Process() while locked = %v, want a retryable error", err)
	}
}

func TestWorkerRefuse(t *testing.T) {
	_, js := bustest.Connect(t, bustest.Start(t))
	if err := bus.EnsureStreams(t.Context(), js, queue.Streams(1)...); err != nil {
		t.Fatal(err)
	}
	st := records.New(storetest.Client(t))
	aw, _ := audittest.Writer(t, js, "email")
	tests := []struct {
		name   string
		record app.Status // "" stores none
		id     string     // the claimed message id; the record's when empty
		want   outcome
	}{
		{name: "queued", record: app.StatusQueued, want: outcome{Err: "permanent", Status: app.StatusFailed, Reason: app.ReasonTampered, Events: []string{"failed"}}},
		{name: "deferred", record: app.StatusDeferred, want: outcome{Err: "permanent", Status: app.StatusFailed, Reason: app.ReasonTampered, Events: []string{"failed"}}},
		{name: "already sent", record: app.StatusSent, want: outcome{Err: "permanent", Status: app.StatusSent}},
		{name: "no record", want: outcome{Err: "permanent"}},
		{name: "id not a message id", record: app.StatusQueued, id: "x", want: outcome{Err: "permanent", Status: app.StatusQueued}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := "refuse-" + string(rune('a'+i))
			w := app.NewWorker(app.WorkerOptions{
				Store: st, Events: queue.NewEvents(js), Auditor: aw, Metrics: metrics.New(prometheus.NewRegistry()),
				Logger: slog.New(slog.DiscardHandler), LockTTL: time.Minute,
			})
			id := "0193a5b2-7c1d-7e2f-8a9b-0c1d2e3f4b5" + string(rune('0'+i))
			if tt.record != "" {
				rec := app.Record{ID: id, Tenant: tenant, Status: tt.record, UpdatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
				if err := st.CreateRecord(t.Context(), rec, time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			claimed := id
			if tt.id != "" {
				claimed = tt.id
			}

			err := w.Refuse(t.Context(), tenant, claimed, "tampered")

			rec, _ := st.Record(t.Context(), tenant, id)
			events, _ := deliveryEvents(t, js, tenant)
			got := outcome{Err: errKind(err), Status: rec.Status, Reason: rec.Reason, Attempts: rec.Attempts, Events: events}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWorkerClaimAndAttemptMarks: a message Send did not commit is
// delivered only while its idempotency key still names it; an attempt that
// finds the mark of an earlier attempt without outcome sends again and
// counts it.
func TestWorkerClaimAndAttemptMarks(t *testing.T) {
	ca := smtptest.NewCA(t)
	_, js := bustest.Connect(t, bustest.Start(t))
	if err := bus.EnsureStreams(t.Context(), js, queue.Streams(1)...); err != nil {
		t.Fatal(err)
	}
	st := records.New(storetest.Client(t))
	aw, _ := audittest.Writer(t, js, "email")
	tests := []struct {
		name string
		// claim is what the idempotency key holds: "self", "other" or "" (expired).
		claim     string
		committed bool
		sending   bool
		want      outcome
		wantUnc   int
	}{
		{name: "uncommitted, claim held: committed and sent", claim: "self",
			want: outcome{Status: app.StatusSent, Attempts: 1, Mail: 1, Data: 1, Events: []string{"sent"}, TLSVerifiedOnEvent: true}},
		{name: "uncommitted, claim expired: dropped untried", claim: "",
			want: outcome{Err: "permanent", Status: app.StatusQueued}},
		{name: "uncommitted, key taken by a retry: dropped untried", claim: "other",
			want: outcome{Err: "permanent", Status: app.StatusQueued}},
		{name: "earlier attempt without outcome: sent again, counted", claim: "self", committed: true, sending: true,
			want: outcome{Status: app.StatusSent, Attempts: 1, Mail: 1, Data: 1, Events: []string{"sent"}, TLSVerifiedOnEvent: true}, wantUnc: 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := "claim-" + string(rune('a'+i))
			srv := smtptest.Start(t, smtptest.Options{CA: ca})
			from, _ := netmail.ParseAddress("noreply@carenotify.localhost")
			mailer, err := relay.New(relay.Options{Host: "localhost", Port: srv.Port, RootCAs: ca.Pool, From: from, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			w := app.NewWorker(app.WorkerOptions{
				Store: st, Events: queue.NewEvents(js), Mailer: mailer, Auditor: aw,
				Metrics: metrics.New(prometheus.NewRegistry()), Logger: slog.New(slog.DiscardHandler), LockTTL: time.Minute,
			})
			now := time.Now()
			m := app.Message{
				ID: fmt.Sprintf("0193a5b2-7c1d-7e2f-8a9b-%012x", 0x100+i), Tenant: tenant, IdempotencyKey: "k",
				To: "patient@example.org", Subject: "s", TextBody: "b", ExpiresAt: now.Add(time.Hour),
			}
			keyHash := app.HashIdempotencyKey("k")
			switch tt.claim {
			case "self":
				_, _, err = st.ClaimIdempotencyKey(t.Context(), tenant, keyHash, m.ID, time.Minute)
			case "other":
				_, _, err = st.ClaimIdempotencyKey(t.Context(), tenant, keyHash, "0193a5b2-7c1d-7e2f-8a9b-ffffffffffff", time.Minute)
			}
			if err != nil {
				t.Fatal(err)
			}
			rec := app.Record{ID: m.ID, Tenant: tenant, Status: app.StatusQueued, UpdatedAt: now, ExpiresAt: m.ExpiresAt,
				IdempotencyKeyHash: keyHash, Committed: tt.committed, Sending: tt.sending}
			if err := st.CreateRecord(t.Context(), rec, time.Hour); err != nil {
				t.Fatal(err)
			}

			perr := w.Process(t.Context(), app.Delivery{Message: m, NumDelivered: 2})

			got, _ := st.Record(t.Context(), tenant, m.ID)
			mail, _, data := srv.Commands()
			events, verified := deliveryEvents(t, js, tenant)
			if diff := cmp.Diff(tt.want, outcome{
				Err: errKind(perr), Status: got.Status, Reason: got.Reason, Attempts: got.Attempts,
				Mail: mail, Data: data, Events: events, TLSVerifiedOnEvent: verified,
			}); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
			if got.UncertainResends != tt.wantUnc || got.Sending {
				t.Errorf("record uncertain resends = %d, sending = %v; want %d, false", got.UncertainResends, got.Sending, tt.wantUnc)
			}
			if tt.want.Status == app.StatusSent && !got.Committed {
				t.Error("sent record is not committed")
			}
		})
	}
}
