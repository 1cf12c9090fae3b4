package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
	mailsmtp "github.com/wneessen/go-mail/smtp"

	"github.com/carenotify/carenotify/services/email/internal/app"
)

// HeaderMessageID carries the carenotify message id on every email; it is
// not PHI, and lets a bounce or a recipient's complaint be traced.
const HeaderMessageID = "X-Carenotify-Message-Id"

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
}

// Relay is app.Mailer for one SMTP relay.
type Relay struct {
	o          Options
	fromDomain string
	tlsConfig  *tls.Config
}

var _ app.Mailer = (*Relay)(nil)

// New returns a Relay.
func New(o Options) (*Relay, error) {
	_, domain, ok := strings.Cut(o.From.Address, "@")
	if !ok || domain == "" {
		return nil, errors.New("relay: from address has no domain")
	}
	if o.Timeout <= 0 {
		return nil, errors.New("relay: timeout must be positive")
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

// Deliver implements app.Mailer: one SMTP session with the relay carrying
// one message. It returns the transport used, a *app.DeliveryError, or
// ctx's error when ctx ended first.
func (r *Relay) Deliver(ctx context.Context, m app.Message) (app.Transport, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()

	msg, err := r.compose(m)
	if err != nil {
		return app.Transport{}, err
	}

	var dialFailed bool
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(dctx, network, addr)
		if err != nil {
			dialFailed = true
			return nil, err
		}
		// go-mail bounds each command, not the whole session: close the
		// connection when the delivery's deadline passes or ctx ends.
		context.AfterFunc(ctx, func() { _ = conn.Close() })
		return conn, nil
	}
	client, err := mail.NewClient(r.o.Host,
		mail.WithPort(r.o.Port),
		mail.WithTLSPolicy(mail.TLSMandatory),
		mail.WithTLSConfig(r.tlsConfig),
		mail.WithTimeout(r.o.Timeout),
		mail.WithDialContextFunc(dial),
	)
	if err != nil {
		return app.Transport{}, &app.DeliveryError{Reason: app.ReasonSession, Detail: "smtp client: " + err.Error()}
	}

	// Connect, EHLO, STARTTLS (mandatory, verified). No AUTH here: it is
	// done below, so that its failures are told apart from TLS ones.
	sc, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return app.Transport{}, ctxErr(ctx)
		}
		return app.Transport{}, classifySetup(err, dialFailed)
	}
	defer func() { _ = client.CloseWithSMTPClient(sc) }()

	tr, err := r.transport(sc)
	if err != nil {
		return app.Transport{}, err
	}
	if err := r.auth(sc); err != nil {
		if ctx.Err() != nil {
			return app.Transport{}, ctxErr(ctx)
		}
		return app.Transport{}, err
	}

	err = client.SendWithSMTPClient(sc, msg)
	if msg.IsDelivered() {
		// DATA was accepted; a failing RSET afterwards changes nothing.
		return tr, nil
	}
	if ctx.Err() != nil {
		return app.Transport{}, ctxErr(ctx)
	}
	return app.Transport{}, classifySend(err)
}

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
// <id@from-domain>, X-Carenotify-Message-Id, Auto-Submitted, and the
// bodies (multipart/alternative when both are given).
func (r *Relay) compose(m app.Message) (*mail.Msg, error) {
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
	switch {
	case m.TextBody != "" && m.HTMLBody != "":
		msg.SetBodyString(mail.TypeTextPlain, m.TextBody)
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTMLBody)
	case m.HTMLBody != "":
		msg.SetBodyString(mail.TypeTextHTML, m.HTMLBody)
	default:
		msg.SetBodyString(mail.TypeTextPlain, m.TextBody)
	}
	return msg, nil
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
