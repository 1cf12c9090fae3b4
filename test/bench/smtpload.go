package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/smtp"
	"time"
)

// SMTPLoad sends the same message over a fixed set of SMTP connections,
// each upgraded with STARTTLS (certificate verified) and reused for every
// message: the raw load an SMTP sink can take.
type SMTPLoad struct {
	addr  string
	tls   *tls.Config
	raw   []byte
	from  string
	conns chan *smtp.Client
}

// NewSMTPLoad opens conns connections to addr, trusting roots for the
// server name "localhost", to send raw from from.
func NewSMTPLoad(ctx context.Context, addr string, roots *x509.CertPool, conns int, from string, raw []byte) (*SMTPLoad, error) {
	l := &SMTPLoad{
		addr: addr, raw: raw, from: from,
		tls:   &tls.Config{ServerName: "localhost", RootCAs: roots, MinVersion: tls.VersionTLS12},
		conns: make(chan *smtp.Client, conns),
	}
	for range conns {
		c, err := l.dial(ctx)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.conns <- c
	}
	return l, nil
}

func (l *SMTPLoad) dial(ctx context.Context) (*smtp.Client, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", l.addr)
	if err != nil {
		return nil, fmt.Errorf("smtp dial: %w", err)
	}
	c, err := smtp.NewClient(conn, "localhost")
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("smtp greeting: %w", err)
	}
	if err := c.Hello("bench.localhost"); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("smtp ehlo: %w", err)
	}
	if err := c.StartTLS(l.tls); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("smtp starttls: %w", err)
	}
	return c, nil
}

// Send delivers the message to rcpt over one of the connections; a broken
// connection is replaced.
func (l *SMTPLoad) Send(ctx context.Context, rcpt string) error {
	c := <-l.conns
	err := l.send(c, rcpt)
	if err != nil {
		_ = c.Close()
		if nc, derr := l.dial(ctx); derr == nil {
			c = nc
		} else {
			c = nil
		}
	}
	l.conns <- c
	return err
}

func (l *SMTPLoad) send(c *smtp.Client, rcpt string) error {
	if c == nil {
		return fmt.Errorf("smtp: no connection")
	}
	if err := c.Mail(l.from); err != nil {
		return fmt.Errorf("smtp mail: %w", err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return fmt.Errorf("smtp rcpt: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	if _, err := w.Write(l.raw); err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp end of data: %w", err)
	}
	return nil
}

// Close quits every connection.
func (l *SMTPLoad) Close() {
	for {
		select {
		case c := <-l.conns:
			if c != nil {
				_ = c.Quit()
			}
		default:
			return
		}
	}
}
