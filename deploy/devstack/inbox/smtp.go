package inbox

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

const (
	maxMessageBytes = 10 << 20
	maxRecipients   = 100
	smtpTimeout     = time.Minute
)

// errMustStartTLS refuses a transaction begun before STARTTLS (RFC 3207,
// section 4).
var errMustStartTLS = &smtp.SMTPError{
	Code:         530,
	EnhancedCode: smtp.EnhancedCode{5, 7, 0},
	Message:      "Must issue a STARTTLS command first",
}

// NewSMTPServer returns an SMTP server on addr that stores every message it
// accepts in the inbox. The caller runs it (ListenAndServe, or Serve on its
// own listener) and closes it.
//
// With a non-nil tlsConfig the server offers STARTTLS, and after STARTTLS it
// accepts AUTH PLAIN with any credentials; it never offers AUTH in clear
// text. With requireTLS, MAIL FROM before STARTTLS is refused with 530 5.7.0;
// requireTLS with a nil tlsConfig therefore refuses every message. Messages
// are limited to 10 MiB and 100 recipients. logger receives message ids,
// sizes and connection errors, never addresses or contents; nil discards.
func (in *Inbox) NewSMTPServer(addr string, tlsConfig *tls.Config, requireTLS bool, logger *slog.Logger) *smtp.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := smtp.NewServer(&backend{inbox: in, requireTLS: requireTLS, logger: logger})
	s.Addr = addr
	s.Domain = "localhost"
	s.TLSConfig = tlsConfig
	s.AllowInsecureAuth = false
	s.MaxMessageBytes = maxMessageBytes
	s.MaxRecipients = maxRecipients
	s.ReadTimeout = smtpTimeout
	s.WriteTimeout = smtpTimeout
	s.ErrorLog = errorLog{logger: logger}
	return s
}

type backend struct {
	inbox      *Inbox
	requireTLS bool
	logger     *slog.Logger
}

var _ smtp.Backend = (*backend)(nil)

// NewSession is called for each EHLO/HELO, including the one after STARTTLS.
func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{backend: b, conn: c}, nil
}

// session is one SMTP session; go-smtp calls its methods from the
// connection's goroutine only.
type session struct {
	*backend
	conn *smtp.Conn
	from string
	to   []string
}

var _ smtp.AuthSession = (*session)(nil)

// AuthMechanisms is consulted only once the connection is encrypted, since
// the server does not allow insecure auth.
func (s *session) AuthMechanisms() []string {
	return []string{sasl.Plain}
}

// Auth accepts any credentials: the sink stands in for a relay that
// authenticates, it does not guard anything.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if _, ok := s.conn.TLSConnectionState(); s.requireTLS && !ok {
		return errMustStartTLS
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err // go-smtp answers 552 for a message over the limit
	}
	m, parseErr := parse(raw)
	m.ID = newID()
	m.Kind = KindEmail
	m.ReceivedAt = time.Now().UTC()
	m.From = s.from
	m.To = s.to
	m.Size = len(raw)
	m.Raw = raw
	if state, ok := s.conn.TLSConnectionState(); ok {
		m.TLS = true
		m.TLSVersion = tls.VersionName(state.Version)
	}
	m.Encryption = encryptionOf(m.Headers)
	m.DKIM, m.DKIMDomain = checkDKIM(raw, s.inbox.keys())
	s.to = nil // m owns the slice now
	s.inbox.add(m)

	// parseErr is not logged: go-message quotes malformed header lines in
	// its errors. The message, raw form included, is on the page.
	s.logger.Info("message received", "id", m.ID, "bytes", m.Size, "recipients", len(m.To),
		"tls", m.TLSVersion, "decoded", parseErr == nil, "dkim", m.DKIM, "encryption", m.Encryption)
	return nil
}

func (s *session) Reset() {
	s.from = ""
	s.to = nil
}

func (s *session) Logout() error {
	return nil
}

// errorLog passes go-smtp's internal errors (accept errors, broken
// connections, recovered panics) to slog.
type errorLog struct {
	logger *slog.Logger
}

func (l errorLog) Printf(format string, v ...any) {
	l.logger.Warn("smtp server error", "err", fmt.Sprintf(format, v...))
}

func (l errorLog) Println(v ...any) {
	l.logger.Warn("smtp server error", "err", strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
