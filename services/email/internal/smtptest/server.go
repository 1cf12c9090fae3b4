package smtptest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure a Server.
type Options struct {
	// CA issues the server's certificate; nil serves no STARTTLS at all.
	CA *CA
	// Rcpt, when set, is asked for the reply to the n-th RCPT TO the server
	// sees (from 1); a non-nil *smtp.SMTPError refuses the recipient.
	Rcpt func(n int) *smtp.SMTPError
	// Username and Password, when set, make the server require AUTH PLAIN.
	Username, Password string
	// Mail, when set, is asked for the reply to the n-th MAIL FROM the
	// server sees (from 1); a non-nil *smtp.SMTPError refuses it.
	Mail func(n int) *smtp.SMTPError
	// DropOnMail, when set and true for the n-th MAIL FROM, closes the
	// connection without a reply, like a relay that timed an idle session out.
	DropOnMail func(n int) bool
	// DropOnData, when set and true for the n-th DATA, reads the message and
	// closes the connection without a reply: the message is not accepted.
	DropOnData func(n int) bool
	// RequireTLS and DSN make the server offer the REQUIRETLS (RFC 8689)
	// and DSN (RFC 3461) extensions.
	RequireTLS, DSN bool
}

// Message is one message the server accepted.
type Message struct {
	From string
	To   []string
	// Data is the message as received (headers and body).
	Data []byte
	// TLS is the connection's TLS state; nil when it was plaintext.
	TLS *tls.ConnectionState
	// MailOptions are the MAIL FROM parameters (REQUIRETLS, RET, ENVID).
	MailOptions smtp.MailOptions
	// RcptOptions are the RCPT TO parameters of each recipient (NOTIFY).
	RcptOptions []smtp.RcptOptions
}

// Server is a running test SMTP server.
type Server struct {
	// Host and Port address it.
	Host string
	Port int

	mu       sync.Mutex
	messages []Message
	mails    int                     // MAIL FROM commands seen
	datas    int                     // DATA commands seen
	rcpts    int                     // RCPT TO commands seen
	conns    map[*smtp.Conn]struct{} // connections accepted
	received chan struct{}
	opts     Options
}

// Start starts a server on 127.0.0.1 that stops when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port,
		received: make(chan struct{}, 100), opts: o, conns: map[*smtp.Conn]struct{}{},
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		// go-smtp starts a new session after STARTTLS: count connections.
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		return &session{s: s, c: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 10 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.EnableREQUIRETLS = o.RequireTLS
	srv.EnableDSN = o.DSN
	if o.CA != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{o.CA.Server}, MinVersion: tls.VersionTLS12}
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// Addr returns host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Commands returns how many MAIL FROM, RCPT TO and DATA commands the
// server has seen.
func (s *Server) Commands() (mail, rcpt, data int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mails, s.rcpts, s.datas
}

// Connections returns how many connections the server has accepted.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Wait waits until the server has accepted n messages in all, or d passes,
// and returns the messages.
func (s *Server) Wait(n int, d time.Duration) []Message {
	deadline := time.After(d)
	for {
		if msgs := s.Messages(); len(msgs) >= n {
			return msgs
		}
		select {
		case <-s.received:
		case <-deadline:
			return s.Messages()
		}
	}
}

var _ smtp.AuthSession = (*session)(nil)

// errDropped is returned after the connection was closed on purpose; the
// client never sees it.
var errDropped = errors.New("connection dropped")

type session struct {
	s     *Server
	c     *smtp.Conn
	from  string
	to    []string
	auth  bool
	mopts smtp.MailOptions
	ropts []smtp.RcptOptions
}

// The session methods implement smtp.AuthSession.

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Username == "" {
		return nil
	}
	return []string{"PLAIN"}
}

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.s.opts.Username || pass != ss.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.auth = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	ss.s.mu.Lock()
	ss.s.mails++
	n := ss.s.mails
	ss.s.mu.Unlock()
	if ss.s.opts.DropOnMail != nil && ss.s.opts.DropOnMail(n) {
		_ = ss.c.Conn().Close()
		return errDropped
	}
	if ss.s.opts.Mail != nil {
		if err := ss.s.opts.Mail(n); err != nil {
			return err
		}
	}
	if ss.s.opts.Username != "" && !ss.auth {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	if opts != nil {
		ss.mopts = *opts
	}
	return nil
}

func (ss *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	ss.s.rcpts++
	n := ss.s.rcpts
	ss.s.mu.Unlock()
	if ss.s.opts.Rcpt != nil {
		if err := ss.s.opts.Rcpt(n); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	var ro smtp.RcptOptions
	if opts != nil {
		ro = *opts
	}
	ss.ropts = append(ss.ropts, ro)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	ss.s.mu.Lock()
	ss.s.datas++
	n := ss.s.datas
	ss.s.mu.Unlock()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return err
	}
	if ss.s.opts.DropOnData != nil && ss.s.opts.DropOnData(n) {
		_ = ss.c.Conn().Close()
		return errDropped
	}
	m := Message{From: ss.from, To: ss.to, Data: buf.Bytes(), MailOptions: ss.mopts, RcptOptions: ss.ropts}
	if st, ok := ss.c.TLSConnectionState(); ok {
		m.TLS = &st
	}
	ss.s.mu.Lock()
	ss.s.messages = append(ss.s.messages, m)
	ss.s.mu.Unlock()
	select {
	case ss.s.received <- struct{}{}:
	default:
	}
	return nil
}

func (ss *session) Reset() { ss.from, ss.to, ss.mopts, ss.ropts = "", nil, smtp.MailOptions{}, nil }

func (ss *session) Logout() error { return nil }
