package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/metrics"
	"github.com/carenotify/carenotify/services/email/internal/report"
	"github.com/carenotify/carenotify/services/email/internal/token"
)

// VERPPrefix starts the local part of every bounce address:
// bounces+<token>@<EMAIL_BOUNCE_DOMAIN>.
const VERPPrefix = "bounces+"

// BouncesOptions configure Bounces.
type BouncesOptions struct {
	// Domain is EMAIL_BOUNCE_DOMAIN: only bounces+<token>@Domain is accepted.
	Domain string
	// Keys check VERP tokens.
	Keys *token.Keys
	// Feedback records bounces and complaints.
	Feedback *app.Feedback
	Metrics  *metrics.Metrics
	Logger   *slog.Logger
	// TLSConfig, when set, makes the listener offer STARTTLS.
	TLSConfig *tls.Config
}

// Bounces is the inbound SMTP listener for asynchronous bounces (RFC 3464
// DSNs) and complaint reports (RFC 5965 ARF) sent to VERP addresses. It
// accepts RCPT TO only for bounces+<token>@Domain whose token verifies and
// names a message this service sent (550 5.1.1 otherwise), reads the
// report and records a hard bounce or a complaint against that message.
// Other mail to a valid address (auto-replies, soft DSNs) is accepted and
// dropped. Nothing of a report is kept or logged: it quotes addresses and
// the original headers.
type Bounces struct {
	o BouncesOptions
}

// NewBounces returns the bounce listener.
func NewBounces(o BouncesOptions) *Bounces { return &Bounces{o: o} }

// VERPAddress returns the envelope sender for message id, or "" when id is
// not a UUID.
func VERPAddress(keys *token.Keys, domain, id string) string {
	tok, err := keys.VERP(id)
	if err != nil {
		return ""
	}
	return VERPPrefix + tok + "@" + domain
}

// Serve accepts connections on l until ctx ends, then shuts down, giving
// sessions grace to finish.
func (b *Bounces) Serve(ctx context.Context, l net.Listener, grace time.Duration) error {
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &bounceSession{b: b, ctx: ctx}, nil
	}))
	srv.Domain = b.o.Domain
	srv.MaxRecipients = 10
	srv.MaxMessageBytes = 10 << 20
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.TLSConfig = b.o.TLSConfig
	// go-smtp's error log may quote commands, and so addresses.
	srv.ErrorLog = log.New(io.Discard, "", 0)

	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-done
	return nil
}

// messageID returns the message id a bounce address names, or ErrInvalid.
func (b *Bounces) messageID(addr string) (string, error) {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || !strings.EqualFold(domain, b.o.Domain) || len(local) <= len(VERPPrefix) ||
		!strings.EqualFold(local[:len(VERPPrefix)], VERPPrefix) {
		return "", token.ErrInvalid
	}
	return b.o.Keys.ParseVERP(local[len(VERPPrefix):])
}

var (
	errNoMailbox = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such mailbox"}
	errTryLater  = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
)

var _ smtp.Session = (*bounceSession)(nil)

// bounceSession is one SMTP session with a reporting system.
type bounceSession struct {
	b   *Bounces
	ctx context.Context
	ids []string
}

func (s *bounceSession) Mail(string, *smtp.MailOptions) error { return nil }

func (s *bounceSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	id, err := s.b.messageID(to)
	if err != nil {
		s.b.o.Metrics.Feedback("invalid", app.FeedbackRefused)
		s.b.o.Logger.Info("bounce address refused: invalid token")
		return errNoMailbox
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	known, err := s.b.o.Feedback.Known(ctx, id)
	switch {
	case err != nil:
		s.b.o.Logger.Warn("bounce address check failed", "messageId", id, "err", err)
		return errTryLater
	case !known:
		s.b.o.Metrics.Feedback("invalid", app.FeedbackUnknown)
		s.b.o.Logger.Info("bounce address refused: unknown message", "messageId", id)
		return errNoMailbox
	}
	s.ids = append(s.ids, id)
	return nil
}

func (s *bounceSession) Data(r io.Reader) error {
	rep, err := report.Parse(r)
	_, _ = io.Copy(io.Discard, r)
	if err != nil {
		// Refusing would have the relay bounce the bounce: accept, drop.
		s.b.o.Metrics.Feedback("malformed", app.FeedbackRefused)
		s.b.o.Logger.Info("bounce report unreadable; dropped", "messageIds", s.ids, "err", err)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 30*time.Second)
	defer cancel()
	for _, id := range s.ids {
		log := s.b.o.Logger.With("messageId", id, "kind", string(rep.Kind))
		switch rep.Kind {
		case report.HardBounce:
			_, err = s.b.o.Feedback.Bounce(ctx, id, app.Report{Source: app.SourceDSN, ID: rep.MessageID, Status: rep.Status})
			log = log.With("dsnStatus", rep.Status)
		case report.Complaint:
			_, err = s.b.o.Feedback.Complaint(ctx, id, app.Report{Source: app.SourceARF, ID: rep.MessageID, Status: rep.FeedbackType})
			log = log.With("feedbackType", rep.FeedbackType)
		default:
			s.b.o.Metrics.Feedback(string(rep.Kind), "ignored")
			log.Info("report received; nothing to record")
			continue
		}
		switch {
		case errors.Is(err, app.ErrNotFound):
			log.Info("report for a message without record; dropped")
		case err != nil:
			log.Warn("record report", "err", err)
			return errTryLater
		default:
			log.Info("report recorded")
		}
	}
	return nil
}

func (s *bounceSession) Reset() { s.ids = nil }

func (s *bounceSession) Logout() error { return nil }
