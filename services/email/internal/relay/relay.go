package relay

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

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
	// HeloName is the name this client gives in EHLO; "localhost" when
	// empty.
	HeloName string

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

	// DSNNotify, when not empty, asks a next hop that offers the DSN
	// extension (RFC 3461) for delivery status notifications: RCPT TO
	// carries NOTIFY=<values joined by commas> (NEVER, or any of SUCCESS,
	// FAILURE, DELAY) and MAIL FROM carries RET=DSNRet and ENVID=<message
	// id>. Nothing is added when the hop does not offer DSN.
	DSNNotify []string
	// DSNRet is what a DSN returns of the message: HDRS (headers only, the
	// default: the body may be PHI) or FULL.
	DSNRet string

	// Direct, when true, delivers to the recipient domain's MX hosts on
	// MXPort instead of Host:Port (no AUTH), in preference order: a host
	// that cannot be reached or cannot offer the TLS the message needs is
	// skipped for the next.
	Direct bool
	// MXPort is the MX hosts' port; 25 when 0.
	MXPort int
	// Resolver looks up MX hosts and dials every hop; net.DefaultResolver
	// when nil.
	Resolver *net.Resolver
	// STS, when set with Direct, honours recipient domains' MTA-STS
	// policies.
	STS *STS
	// OnSTS, when set, is told of every MTA-STS check that found a
	// policy: its mode and the result (ok, mx_mismatch, tls_unverified).
	OnSTS func(mode, result string)
}

// DefaultDSNNotify is the NOTIFY parameter asked for by default.
var DefaultDSNNotify = []string{"FAILURE", "DELAY"}

// ValidDSNNotify reports whether vs is a valid NOTIFY list (RFC 3461
// §4.1): NEVER alone, or distinct values among SUCCESS, FAILURE, DELAY.
func ValidDSNNotify(vs []string) bool {
	if len(vs) == 0 {
		return false
	}
	if len(vs) == 1 && vs[0] == "NEVER" {
		return true
	}
	seen := map[string]bool{}
	for _, v := range vs {
		if (v != "SUCCESS" && v != "FAILURE" && v != "DELAY") || seen[v] {
			return false
		}
		seen[v] = true
	}
	return true
}

// Signer signs a composed message (CRLF line endings) and returns it with
// its signature header(s) prepended.
type Signer interface {
	Sign(msg []byte) ([]byte, error)
}

// Relay is app.Mailer for one SMTP relay. It keeps up to MaxIdle sessions
// open between deliveries and sends messages over them one after another
// (RSET between two), so that a busy worker pays for TCP, TLS and AUTH
// once per MaxMessagesPerConnection messages rather than per message. A
// session is reused only for a message whose TLS level it meets.
type Relay struct {
	o          Options
	fromDomain string

	mu     sync.Mutex
	idle   map[string][]*session // by hop address
	nidle  int
	closed bool
	mx     map[string]mxEntry // by recipient domain
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
	if o.HeloName == "" {
		o.HeloName = "localhost"
	}
	if len(o.DSNNotify) > 0 && !ValidDSNNotify(o.DSNNotify) {
		return nil, errors.New("relay: DSN NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY")
	}
	switch o.DSNRet {
	case "":
		o.DSNRet = "HDRS"
	case "HDRS", "FULL":
	default:
		return nil, errors.New("relay: DSN RET must be HDRS or FULL")
	}
	if o.MXPort == 0 {
		o.MXPort = 25
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.Direct {
		o.Username, o.Password = "", ""
	}
	return &Relay{o: o, fromDomain: domain, idle: map[string][]*session{}, mx: map[string]mxEntry{}}, nil
}

// Deliver implements app.Mailer: it sends one message over an idle
// session with the relay that meets o.TLS, or a new one. It returns the
// transport used, a *app.DeliveryError, or ctx's error when ctx ended
// first.
//
// A reused session that turns out to be dead (the relay closed it while
// idle, or answers 421) before MAIL FROM is accepted has carried nothing of
// the message, so the message is sent once more over a new session right
// away. A failure after that is classified and left to the worker's retry:
// if the connection broke after the data was sent, the relay may have
// accepted it (delivery is at least once).
func (r *Relay) Deliver(ctx context.Context, o app.Outgoing) (app.Transport, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()

	data, enc, err := r.compose(o)
	if err != nil {
		return app.Transport{}, err
	}
	from := r.o.From.Address
	if r.o.ReturnPath != nil {
		if rp := r.o.ReturnPath(o.Message); rp != "" {
			from = rp
		}
	}
	if strings.ContainsAny(o.Message.To, "\r\n<>") || strings.ContainsAny(from, "\r\n<>") {
		// Send validated the address; the error would quote it.
		return app.Transport{}, &app.DeliveryError{Permanent: true, Reason: app.ReasonRecipient}
	}
	hops, level, pol, err := r.route(ctx, o)
	if err != nil {
		return app.Transport{}, err
	}
	var last error
	for _, h := range hops {
		tr, err, next := r.deliverTo(ctx, h, level, o, from, data)
		if err == nil {
			tr.SMIME, tr.PGP = enc.SMIME, enc.PGP
			if pol != nil {
				result := "ok"
				if !tr.TLSVerified {
					result = "tls_unverified"
				}
				r.stsReport(pol.Mode, result)
			}
			return tr, nil
		}
		if !next || ctx.Err() != nil {
			return app.Transport{}, err
		}
		last = err
	}
	return app.Transport{}, last
}

// deliverTo sends the message over a session with h. next is true when
// the failure came before any transaction (no connection, no TLS that
// meets level), so another MX host may be tried.
func (r *Relay) deliverTo(ctx context.Context, h hop, level app.TLSLevel, o app.Outgoing, from string, data []byte) (tr app.Transport, err error, next bool) {
	for {
		s, reused, err := r.get(ctx, h, level)
		if err != nil {
			return app.Transport{}, err, true
		}
		out := r.transact(ctx, s, o, from, data)
		if out.keep {
			s.sent++
			r.put(s)
		} else {
			s.close(out.polite)
		}
		switch {
		case out.err == nil:
			tr := s.tr
			tr.RequireTLS = out.requireTLS
			return tr, nil, false
		case ctx.Err() != nil:
			return app.Transport{}, ctxErr(ctx), false
		case reused && out.retry:
			continue
		}
		return app.Transport{}, out.err, false
	}
}

// Destination implements app.Mailer: the relay's host, or the recipient
// domain's most preferred MX host.
func (r *Relay) Destination(ctx context.Context, o app.Outgoing) (string, error) {
	if !r.o.Direct {
		return strings.ToLower(r.o.Host), nil
	}
	hosts, err := r.mxHosts(ctx, recipientDomain(o))
	if err != nil {
		return "", err
	}
	return hosts[0], nil
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
	// requireTLS is true when MAIL FROM carried REQUIRETLS.
	requireTLS bool
}

// transact runs one mail transaction (MAIL, RCPT, DATA, RSET) on s.
func (r *Relay) transact(ctx context.Context, s *session, o app.Outgoing, from string, data []byte) outcome {
	// Bound this transaction by ctx: its deadline, and closing the
	// connection when it ends early.
	if d, ok := ctx.Deadline(); ok {
		_ = s.conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.conn.Close() })
	out := r.transaction(s, o, from, data)
	if !stop() {
		out.keep, out.polite, out.retry = false, false, false
	}
	return out
}

func (r *Relay) transaction(s *session, o app.Outgoing, from string, data []byte) outcome {
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
	params, requireTLS := r.mailParams(s, o, from, len(data))
	if err := command(s.sc, 250, "MAIL FROM:<"+from+">"+params); err != nil {
		return failed("MAIL FROM", err, true)
	}
	if err := command(s.sc, 25, "RCPT TO:<"+o.Message.To+">"+r.rcptParams(s)); err != nil {
		return failed(app.StageRcpt, err, false)
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
		return outcome{requireTLS: requireTLS}
	}
	return outcome{keep: true, requireTLS: requireTLS}
}

// mailParams returns the MAIL FROM parameters for o on s: BODY=8BITMIME
// and SIZE when offered, SMTPUTF8 when an address needs it and it is
// offered, and REQUIRETLS (RFC 8689) when o asks for it, the session is
// verified TLS and the hop offers it. requireTLS says whether it is set.
func (r *Relay) mailParams(s *session, o app.Outgoing, from string, size int) (params string, requireTLS bool) {
	var b strings.Builder
	if ok, _ := s.sc.Extension("8BITMIME"); ok {
		b.WriteString(" BODY=8BITMIME")
	}
	if ok, _ := s.sc.Extension("SIZE"); ok {
		b.WriteString(" SIZE=" + strconv.Itoa(size))
	}
	if ok, _ := s.sc.Extension("SMTPUTF8"); ok && (!ascii(from) || !ascii(o.Message.To)) {
		b.WriteString(" SMTPUTF8")
	}
	if ok, _ := s.sc.Extension("REQUIRETLS"); ok && o.RequireTLS && s.tr.TLSVerified {
		b.WriteString(" REQUIRETLS")
		requireTLS = true
	}
	if r.dsn(s) {
		b.WriteString(" RET=" + r.o.DSNRet + " ENVID=" + xtext(o.Message.ID))
	}
	return b.String(), requireTLS
}

// rcptParams returns the RCPT TO parameters on s: NOTIFY when DSNs are
// asked for and s offers them. No ORCPT: it would repeat the recipient,
// which the relay has anyway, in every DSN.
func (r *Relay) rcptParams(s *session) string {
	if !r.dsn(s) {
		return ""
	}
	return " NOTIFY=" + strings.Join(r.o.DSNNotify, ",")
}

// dsn reports whether DSNs are asked for on s.
func (r *Relay) dsn(s *session) bool {
	if len(r.o.DSNNotify) == 0 {
		return false
	}
	ok, _ := s.sc.Extension("DSN")
	return ok
}

// xtext encodes v as RFC 3461 §4 xtext: "+" and "=" and characters
// outside "!" to "~" as "+XX". Message ids (UUIDs) pass unchanged.
func xtext(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			fmt.Fprintf(&b, "+%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// command sends one command line on sc's connection and reads the reply,
// which must start with expect (250, or 25 for 250/251). The go-mail
// client has no way to add REQUIRETLS, ENVID or SIZE to MAIL FROM, so the
// transaction's commands are sent on its text connection directly. Reply
// errors are *textproto.Error, as the client's own.
func command(sc *mailsmtp.Client, expect int, line string) error {
	id, err := sc.Text.Cmd("%s", line)
	if err != nil {
		return err
	}
	sc.Text.StartResponse(id)
	defer sc.Text.EndResponse(id)
	_, _, err = sc.Text.ReadResponse(expect)
	return err
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
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
