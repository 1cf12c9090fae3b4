package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	mailsmtp "github.com/wneessen/go-mail/smtp"

	"github.com/carenotify/carenotify/services/email/internal/app"
)

// hop is a next hop: the relay, or one MX host of the recipient's domain.
type hop struct {
	// host is the name dialled and the name its certificate must be
	// valid for.
	host string
	port int
}

func (h hop) addr() string { return net.JoinHostPort(h.host, strconv.Itoa(h.port)) }

// session is one open SMTP session with a next hop: connected, greeted,
// upgraded with STARTTLS when the hop offers it (and verified, when the
// level asked for it) and, when configured, authenticated. A session is
// kept and reused only for messages whose TLS level it satisfies, so a
// PHI message never goes over a session that was not verified.
type session struct {
	hop  hop
	sc   *mailsmtp.Client
	conn net.Conn // the TCP connection under sc, to bound it by a context
	tr   app.Transport
	// sent counts the messages this session has carried.
	sent int
	// idle is when the session was last put back; timer closes it when it
	// stays idle for IdleTimeout.
	idle  time.Time
	timer *time.Timer
}

// satisfies reports whether s may carry a message that needs level.
func (s *session) satisfies(level app.TLSLevel) bool {
	return level == app.TLSOpportunistic || s.tr.TLSVerified
}

// close ends the session: QUIT when polite is true and the session is
// healthy, then the connection is closed in any case.
func (s *session) close(polite bool) {
	if polite {
		_ = s.conn.SetDeadline(time.Now().Add(2 * time.Second))
		_ = s.sc.Quit()
	}
	_ = s.sc.Close()
	_ = s.conn.Close()
}

// get returns an idle session with h that satisfies level, or dials a new
// one. reused tells which.
func (r *Relay) get(ctx context.Context, h hop, level app.TLSLevel) (s *session, reused bool, err error) {
	key := h.addr()
	r.mu.Lock()
	list := r.idle[key]
	for i := len(list) - 1; i >= 0; i-- {
		s = list[i]
		if !s.satisfies(level) {
			continue
		}
		list = append(list[:i], list[i+1:]...)
		r.idle[key] = list
		r.nidle--
		s.timer.Stop()
		if time.Since(s.idle) >= r.o.IdleTimeout {
			// The timer is about to close it, or lost the race to us.
			r.mu.Unlock()
			s.close(true)
			return r.get(ctx, h, level)
		}
		r.mu.Unlock()
		return s, true, nil
	}
	r.mu.Unlock()
	s, err = r.dial(ctx, h, level)
	return s, false, err
}

// put returns a healthy session to the idle pool, or closes it when it
// has carried MaxMessagesPerConnection messages, the pool is full or the
// relay is closed.
func (r *Relay) put(s *session) {
	if s.sent >= r.o.MaxMessagesPerConnection {
		s.close(true)
		return
	}
	r.mu.Lock()
	if r.closed || r.nidle >= r.o.MaxIdle {
		r.mu.Unlock()
		s.close(true)
		return
	}
	s.idle = time.Now()
	if s.timer == nil {
		s.timer = time.AfterFunc(r.o.IdleTimeout, func() { r.expire(s) })
	} else {
		s.timer.Reset(r.o.IdleTimeout)
	}
	key := s.hop.addr()
	r.idle[key] = append(r.idle[key], s)
	r.nidle++
	r.mu.Unlock()
}

// expire closes s if it is still idle.
func (r *Relay) expire(s *session) {
	key := s.hop.addr()
	r.mu.Lock()
	for i, x := range r.idle[key] {
		if x == s {
			r.idle[key] = append(r.idle[key][:i], r.idle[key][i+1:]...)
			r.nidle--
			r.mu.Unlock()
			s.close(true)
			return
		}
	}
	r.mu.Unlock()
}

// Close ends every idle session with QUIT. Deliveries still running finish
// and close their sessions themselves.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	idle := r.idle
	r.idle = map[string][]*session{}
	r.nidle = 0
	r.mu.Unlock()
	for _, list := range idle {
		for _, s := range list {
			s.timer.Stop()
			s.close(true)
		}
	}
	return nil
}

// dial opens a new session with h: connect, greeting, EHLO, STARTTLS
// (required and verified for TLSVerified; taken when offered for
// TLSOpportunistic), then AUTH when a username is set, over verified TLS
// only. Errors are classified; nothing about a message is sent here.
func (r *Relay) dial(ctx context.Context, h hop, level app.TLSLevel) (*session, error) {
	d := net.Dialer{Resolver: r.o.Resolver}
	conn, err := d.DialContext(ctx, "tcp", h.addr())
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctxErr(ctx)
		}
		return nil, &app.DeliveryError{Reason: app.ReasonConnect, Detail: err.Error()}
	}
	// The smtp client bounds nothing by itself: close the connection when
	// ctx ends first.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	fail := func(err error) (*session, error) {
		stop()
		_ = conn.Close()
		if ctx.Err() != nil {
			return nil, ctxErr(ctx)
		}
		var de *app.DeliveryError
		if errors.As(err, &de) {
			de.NextHop = h.host
		}
		return nil, err
	}
	sc, err := mailsmtp.NewClient(conn, h.host)
	if err != nil {
		return fail(classifySetup(err))
	}
	if err := sc.Hello(r.o.HeloName); err != nil {
		return fail(classifySetup(err))
	}
	s := &session{hop: h, sc: sc, conn: conn, tr: app.Transport{NextHop: h.host}}
	if ok, _ := sc.Extension("STARTTLS"); ok {
		verified := false
		if err := sc.StartTLS(r.tlsConfig(h.host, level, &verified)); err != nil {
			return fail(classifyStartTLS(err))
		}
		st, ok := sc.TLSConnectionState()
		if !ok || !st.HandshakeComplete || (level == app.TLSVerified && (!verified || len(st.VerifiedChains) == 0)) {
			return fail(&app.DeliveryError{Reason: app.ReasonTLS, Detail: "session is not the TLS asked for"})
		}
		s.tr.TLSVersion = strings.ReplaceAll(tls.VersionName(st.Version), " ", "")
		s.tr.TLSVerified = verified
	} else if level == app.TLSVerified {
		return fail(&app.DeliveryError{Reason: app.ReasonNoSTARTTLS, Detail: "next hop offers no STARTTLS"})
	}
	if err := r.auth(s); err != nil {
		return fail(err)
	}
	if !stop() {
		return fail(errors.New("session closed"))
	}
	_ = conn.SetDeadline(time.Time{})
	return s, nil
}

// tlsConfig returns the TLS client config for host. For TLSVerified it
// verifies the chain against RootCAs and the host name as crypto/tls
// does; for TLSOpportunistic it verifies the same way but lets an
// unverified certificate pass, setting *verified to say which.
func (r *Relay) tlsConfig(host string, level app.TLSLevel, verified *bool) *tls.Config {
	verify := func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
			DNSName: host, Roots: r.o.RootCAs, Intermediates: inter,
		})
		*verified = err == nil
		return err
	}
	cfg := &tls.Config{ServerName: host, RootCAs: r.o.RootCAs, MinVersion: tls.VersionTLS12}
	if level == app.TLSVerified {
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			// crypto/tls has verified the chain already; this only notes it.
			*verified = len(cs.VerifiedChains) > 0
			return nil
		}
		return cfg
	}
	cfg.InsecureSkipVerify = true // verified by hand below, and allowed to fail
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		_ = verify(cs)
		return nil
	}
	return cfg
}

// auth runs SMTP AUTH when a username is configured: PLAIN, or LOGIN when
// the relay offers only that, over a verified TLS session only (the
// credentials are not sent over an unverified or plaintext session).
func (r *Relay) auth(s *session) error {
	if r.o.Username == "" {
		return nil
	}
	if !s.tr.TLSVerified {
		return &app.DeliveryError{Reason: app.ReasonTLSUnverified, Detail: "SMTP AUTH needs verified TLS"}
	}
	ok, mechs := s.sc.Extension("AUTH")
	if !ok {
		return &app.DeliveryError{Reason: app.ReasonAuth, Detail: "relay offers no SMTP AUTH"}
	}
	var a mailsmtp.Auth
	switch offered := strings.Fields(strings.ToUpper(mechs)); {
	case contains(offered, "PLAIN"):
		a = mailsmtp.PlainAuth("", r.o.Username, r.o.Password, s.hop.host, false)
	case contains(offered, "LOGIN"):
		a = mailsmtp.LoginAuth(r.o.Username, r.o.Password, s.hop.host, false)
	default:
		return &app.DeliveryError{Reason: app.ReasonAuth, Detail: "relay offers neither AUTH PLAIN nor LOGIN"}
	}
	if err := s.sc.Auth(a); err != nil {
		code, _ := replyCode(err)
		return &app.DeliveryError{Reason: app.ReasonAuth, Code: code, Detail: "authentication refused"}
	}
	return nil
}
