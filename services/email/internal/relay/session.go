package relay

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/wneessen/go-mail"
	mailsmtp "github.com/wneessen/go-mail/smtp"

	"github.com/carenotify/carenotify/services/email/internal/app"
)

// session is one open SMTP session with the relay: connected, greeted,
// upgraded with STARTTLS to a verified TLS connection and, when configured,
// authenticated. Only such a session is ever kept or reused, so a reused
// session is the very connection that was verified.
type session struct {
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

// get returns an idle session, or dials a new one. reused tells which.
func (r *Relay) get(ctx context.Context) (s *session, reused bool, err error) {
	r.mu.Lock()
	for len(r.idle) > 0 {
		s = r.idle[len(r.idle)-1]
		r.idle = r.idle[:len(r.idle)-1]
		s.timer.Stop()
		if r.o.IdleTimeout > 0 && time.Since(s.idle) >= r.o.IdleTimeout {
			// The timer is about to close it, or lost the race to us.
			r.mu.Unlock()
			s.close(true)
			r.mu.Lock()
			s = nil
			continue
		}
		r.mu.Unlock()
		return s, true, nil
	}
	r.mu.Unlock()
	s, err = r.dial(ctx)
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
	if r.closed || len(r.idle) >= r.o.MaxIdle {
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
	r.idle = append(r.idle, s)
	r.mu.Unlock()
}

// expire closes s if it is still idle.
func (r *Relay) expire(s *session) {
	r.mu.Lock()
	for i, x := range r.idle {
		if x == s {
			r.idle = append(r.idle[:i], r.idle[i+1:]...)
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
	r.idle = nil
	r.mu.Unlock()
	for _, s := range idle {
		s.timer.Stop()
		s.close(true)
	}
	return nil
}

// dial opens a new session: connect, EHLO, STARTTLS (mandatory, verified
// for Host), then AUTH when a username is set. Errors are classified.
func (r *Relay) dial(ctx context.Context) (*session, error) {
	var (
		conn       net.Conn
		dialFailed bool
	)
	stop := func() bool { return true }
	dialer := func(dctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(dctx, network, addr)
		if err != nil {
			dialFailed = true
			return nil, err
		}
		conn = c
		// go-mail bounds each command, not the whole handshake: close the
		// connection when ctx ends first.
		stop = context.AfterFunc(ctx, func() { _ = c.Close() })
		return c, nil
	}
	client, err := mail.NewClient(r.o.Host,
		mail.WithPort(r.o.Port),
		mail.WithTLSPolicy(mail.TLSMandatory),
		mail.WithTLSConfig(r.tlsConfig),
		mail.WithTimeout(r.o.Timeout),
		mail.WithDialContextFunc(dialer),
	)
	if err != nil {
		return nil, &app.DeliveryError{Reason: app.ReasonSession, Detail: "smtp client: " + err.Error()}
	}
	// Connect, EHLO, STARTTLS (mandatory, verified). No AUTH here: it is
	// done below, so that its failures are told apart from TLS ones.
	sc, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		stop()
		if conn != nil {
			_ = conn.Close()
		}
		if ctx.Err() != nil {
			return nil, ctxErr(ctx)
		}
		return nil, classifySetup(err, dialFailed)
	}
	s := &session{sc: sc, conn: conn}
	fail := func(err error) (*session, error) {
		stop()
		s.close(false)
		if ctx.Err() != nil {
			return nil, ctxErr(ctx)
		}
		return nil, err
	}
	if s.tr, err = r.transport(sc); err != nil {
		return fail(err)
	}
	if err := r.auth(sc); err != nil {
		return fail(err)
	}
	if !stop() {
		return fail(errors.New("session closed"))
	}
	return s, nil
}
