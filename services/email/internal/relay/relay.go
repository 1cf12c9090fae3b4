package relay

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	netmail "net/mail"
	"strings"
	"sync"
	"time"

	"github.com/wneessen/go-mail"
	mailsmtp "github.com/wneessen/go-mail/smtp"

	"github.com/carenotify/carenotify/services/email/internal/app"
)

// HeaderMessageID carries the carenotify message id on every email; it is
// not PHI, and lets a bounce or a recipient's complaint be traced.
const HeaderMessageID = "X-Carenotify-Message-Id"

// One-click unsubscribe headers (RFC 2369, RFC 8058).
const (
	HeaderListUnsubscribe     = "List-Unsubscribe"
	HeaderListUnsubscribePost = "List-Unsubscribe-Post"
)

// Defaults of the connection-reuse options.
const (
	DefaultMaxMessagesPerConnection = 100
	DefaultIdleTimeout              = 30 * time.Second
)

// Options configure a Relay.
type Options struct {
	// Host and Port address the relay; Host is also the name its
	// certificate must be valid for.
	Host string
	Port int
	// Username and Password turn on SMTP AUTH when Username is set.
	Username, Password string
	// RootCAs verify the relay's certificate.
	RootCAs *x509.CertPool
	// From is the From header of every message; its domain ends Message-IDs.
	From *netmail.Address
	// Timeout bounds one delivery, connection included.
	Timeout time.Duration

	// MaxMessagesPerConnection is how many messages one session carries
	// before it is closed with QUIT; DefaultMaxMessagesPerConnection when 0.
	MaxMessagesPerConnection int
	// IdleTimeout closes a session nobody used for that long;
	// DefaultIdleTimeout when 0.
	IdleTimeout time.Duration
	// MaxIdle is how many idle sessions are kept open: the number of
	// workers, so each keeps its own. 1 when 0.
	MaxIdle int

	// Signer, when set, signs every composed message (DKIM).
	Signer Signer
	// Unsubscribe, when set, returns the one-click unsubscribe URL of a
	// message (RFC 8058), or "" for none.
	Unsubscribe func(m app.Message) string
	// ReturnPath, when set, returns the envelope sender (MAIL FROM) of a
	// message, e.g. a VERP address; "" means the From address.
	ReturnPath func(m app.Message) string
}

// Signer signs a composed message (CRLF line endings) and returns it with
// its signature header(s) prepended.
type Signer interface {
	Sign(msg []byte) ([]byte, error)
}

// Relay is app.Mailer for one SMTP relay. It keeps up to MaxIdle verified
// sessions open between deliveries and sends messages over them one after
// another (RSET between two), so that a busy worker pays for TCP, TLS and
// AUTH once per MaxMessagesPerConnection messages rather than per message.
type Relay struct {
	o          Options
	fromDomain string
	tlsConfig  *tls.Config

	mu     sync.Mutex
	idle   []*session
	closed bool
}

var _ app.Mailer = (*Relay)(nil)

// New returns a Relay. Close it to end its idle sessions.
func New(o Options) (*Relay, error) {
	_, domain, ok := strings.Cut(o.From.Address, "@")
	if !ok || domain == "" {
		return nil, errors.New("relay: from address has no domain")
	}
	if o.Timeout <= 0 {
		return nil, errors.New("relay: timeout must be positive")
	}
	if o.MaxMessagesPerConnection <= 0 {
		o.MaxMessagesPerConnection = DefaultMaxMessagesPerConnection
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxIdle <= 0 {
		o.MaxIdle = 1
	}
	return &Relay{
		o:          o,
		fromDomain: domain,
		tlsConfig: &tls.Config{
			ServerName: o.Host,
			RootCAs:    o.RootCAs,
			MinVersion: tls.VersionTLS12,
		},
	}, nil
}

// Deliver implements app.Mailer: it sends one message over an idle
// session with the relay, or a new one. It returns the transport used, a
// *app.DeliveryError, or ctx's error when ctx ended first.
//
// A reused session that turns out to be dead (the relay closed it while
// idle, or answers 421) before MAIL FROM is accepted has carried nothing of
// the message, so the message is sent once more over a new session right
// away. A failure after that is classified and left to the worker's retry:
// if the connection broke after the data was sent, the relay may have
// accepted it (delivery is at least once).
func (r *Relay) Deliver(ctx context.Context, m app.Message) (app.Transport, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()

	data, err := r.compose(m)
	if err != nil {
		return app.Transport{}, err
	}
	from := r.o.From.Address
	if r.o.ReturnPath != nil {
		if rp := r.o.ReturnPath(m); rp != "" {
			from = rp
		}
	}
	for {
		s, reused, err := r.get(ctx)
		if err != nil {
			return app.Transport{}, err
		}
		out := r.transact(ctx, s, from, m.To, data)
		if out.keep {
			s.sent++
			r.put(s)
		} else {
			s.close(out.polite)
		}
		switch {
		case out.err == nil:
			return s.tr, nil
		case ctx.Err() != nil:
			return app.Transport{}, ctxErr(ctx)
		case reused && out.retry:
			continue
		}
		return app.Transport{}, out.err
	}
}

// outcome is what one transaction on a session came to.
type outcome struct {
	// err is nil when the relay accepted the message.
	err error
	// keep is true when the session may carry another message.
	keep bool
	// polite is true when a session that is not kept can still take a QUIT.
	polite bool
	// retry is true when nothing of the message reached the relay and the
	// session was dead, so a new session may try again at once.
	retry bool
}

// transact runs one mail transaction (MAIL, RCPT, DATA, RSET) on s.
func (r *Relay) transact(ctx context.Context, s *session, from, to string, data []byte) outcome {
	// Bound this transaction by ctx: its deadline, and closing the
	// connection when it ends early.
	if d, ok := ctx.Deadline(); ok {
		_ = s.conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.conn.Close() })
	out := r.transaction(s, from, to, data)
	if !stop() {
		out.keep, out.polite, out.retry = false, false, false
	}
	return out
}

func (r *Relay) transaction(s *session, from, to string, data []byte) outcome {
	// failed classifies err at stage; a reply leaves the session usable
	// after RSET, unless it is 421 (the relay is closing it).
	failed := func(stage string, err error, retry bool) outcome {
		code, isReply := replyCode(err)
		out := outcome{err: classifyTx(stage, err)}
		switch {
		case isReply && code == 421:
			out.retry = retry
		case isReply:
			out.polite = true
			out.keep = s.sc.Reset() == nil
		default:
			out.retry = retry
		}
		return out
	}
	if err := s.sc.Mail(angle(from)); err != nil {
		return failed("MAIL FROM", err, true)
	}
	if err := s.sc.Rcpt(angle(to)); err != nil {
		return failed("RCPT TO", err, false)
	}
	w, err := s.sc.Data()
	if err != nil {
		return failed("DATA", err, false)
	}
	if _, err := w.Write(data); err != nil {
		return outcome{err: classifyTx("DATA", err)}
	}
	if err := w.Close(); err != nil {
		return failed("end of DATA", err, false)
	}
	// Accepted. RSET starts the next transaction afresh; if it fails the
	// session is closed, the message stays sent.
	if err := s.sc.Reset(); err != nil {
		return outcome{}
	}
	return outcome{keep: true}
}

// angle returns addr as an SMTP path, <addr>.
func angle(addr string) string { return "<" + addr + ">" }

// transport checks that the session is TLS with a verified chain, as
// TLSMandatory promises, and describes it.
func (r *Relay) transport(sc *mailsmtp.Client) (app.Transport, error) {
	st, err := sc.GetTLSConnectionState()
	if err != nil || !st.HandshakeComplete || len(st.VerifiedChains) == 0 {
		return app.Transport{}, &app.DeliveryError{Reason: app.ReasonTLS, Detail: "session is not verified TLS"}
	}
	return app.Transport{
		TLSVersion:  strings.ReplaceAll(tls.VersionName(st.Version), " ", ""),
		TLSVerified: true,
		NextHop:     r.o.Host,
	}, nil
}

// auth runs SMTP AUTH when a username is configured: PLAIN, or LOGIN when
// the relay offers only that. Both are safe here because the session is
// verified TLS; the smtp package refuses them otherwise.
func (r *Relay) auth(sc *mailsmtp.Client) error {
	if r.o.Username == "" {
		return nil
	}
	ok, mechs := sc.Extension("AUTH")
	if !ok {
		return &app.DeliveryError{Reason: app.ReasonAuth, Detail: "relay offers no SMTP AUTH"}
	}
	var a mailsmtp.Auth
	switch offered := strings.Fields(strings.ToUpper(mechs)); {
	case contains(offered, "PLAIN"):
		a = mailsmtp.PlainAuth("", r.o.Username, r.o.Password, r.o.Host, false)
	case contains(offered, "LOGIN"):
		a = mailsmtp.LoginAuth(r.o.Username, r.o.Password, r.o.Host, false)
	default:
		return &app.DeliveryError{Reason: app.ReasonAuth, Detail: "relay offers neither AUTH PLAIN nor LOGIN"}
	}
	if err := sc.Auth(a); err != nil {
		code, _ := replyCode(err)
		return &app.DeliveryError{Reason: app.ReasonAuth, Code: code, Detail: "authentication refused"}
	}
	return nil
}

// compose builds the MIME message: From, To, Subject, Date, Message-ID
// <id@from-domain>, X-Carenotify-Message-Id, Auto-Submitted, List-Unsubscribe
// and List-Unsubscribe-Post when Unsubscribe gives a URL, and the bodies
// (multipart/alternative when both are given); then signs it when a
// Signer is set. The result has CRLF line endings.
func (r *Relay) compose(m app.Message) ([]byte, error) {
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	msg.FromMailAddress(r.o.From)
	if err := msg.To(m.To); err != nil {
		// Send validated the address; the error would quote it.
		return nil, &app.DeliveryError{Permanent: true, Reason: app.ReasonRecipient}
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageIDWithValue(m.ID + "@" + r.fromDomain)
	msg.SetGenHeader(mail.Header(HeaderMessageID), m.ID)
	msg.SetGenHeader(mail.Header("Auto-Submitted"), "auto-generated")
	if r.o.Unsubscribe != nil {
		if u := r.o.Unsubscribe(m); u != "" {
			msg.SetGenHeader(mail.Header(HeaderListUnsubscribe), "<"+u+">")
			msg.SetGenHeader(mail.Header(HeaderListUnsubscribePost), "List-Unsubscribe=One-Click")
		}
	}
	switch {
	case m.TextBody != "" && m.HTMLBody != "":
		msg.SetBodyString(mail.TypeTextPlain, m.TextBody)
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTMLBody)
	case m.HTMLBody != "":
		msg.SetBodyString(mail.TypeTextHTML, m.HTMLBody)
	default:
		msg.SetBodyString(mail.TypeTextPlain, m.TextBody)
	}
	var buf bytes.Buffer
	if _, err := msg.WriteTo(&buf); err != nil {
		return nil, &app.DeliveryError{Permanent: true, Reason: app.ReasonSession, Detail: "compose message"}
	}
	if r.o.Signer == nil {
		return buf.Bytes(), nil
	}
	signed, err := r.o.Signer.Sign(buf.Bytes())
	if err != nil {
		// Temporary: a key problem is for the operator to fix.
		return nil, &app.DeliveryError{Reason: app.ReasonSession, Detail: "dkim: " + err.Error()}
	}
	return signed, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ctxErr reports why ctx ended: a timeout is a temporary connection
// failure, a cancellation (shutdown) is the context's own error.
func ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &app.DeliveryError{Reason: app.ReasonConnect, Detail: "delivery timed out"}
	}
	return ctx.Err()
}
