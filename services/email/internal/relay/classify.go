package relay

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/textproto"

	"github.com/wneessen/go-mail"

	"github.com/carenotify/carenotify/services/email/internal/app"
)

// classifySetup classifies a failure to connect, greet, EHLO or STARTTLS.
// Nothing about the message has been sent yet, so error texts carry no PHI;
// the relay's reply text is still left out, as everywhere.
func classifySetup(err error, dialFailed bool) error {
	if code, ok := replyCode(err); ok {
		reason := app.ReasonSession
		if code >= 400 && code < 500 {
			reason = app.ReasonSMTP4xx
		}
		return &app.DeliveryError{Reason: reason, Code: code, Detail: "relay refused the session"}
	}
	switch {
	case dialFailed:
		return &app.DeliveryError{Reason: app.ReasonConnect, Detail: err.Error()}
	case isTLSError(err):
		return &app.DeliveryError{Reason: app.ReasonTLS, Detail: err.Error()}
	case isNetError(err):
		return &app.DeliveryError{Reason: app.ReasonConnect, Detail: err.Error()}
	}
	// What is left is go-mail refusing to go on without TLS: the relay
	// offers no STARTTLS, or the session did not become TLS.
	return &app.DeliveryError{Reason: app.ReasonTLS, Detail: err.Error()}
}

// classifySend classifies a failure of the mail transaction (MAIL FROM,
// RCPT TO, DATA). The error texts here quote the recipient and the relay's
// replies, so only codes are kept.
func classifySend(err error) error {
	var se *mail.SendError
	if !errors.As(err, &se) {
		return &app.DeliveryError{Reason: app.ReasonConnect, Detail: "transaction failed"}
	}
	code := se.ErrorCode()
	switch {
	case code >= 500 && code < 600 && !se.IsTemp():
		return &app.DeliveryError{
			Permanent: true, Reason: app.ReasonSMTP5xx, Code: code, EnhancedCode: se.EnhancedStatusCode(),
			Detail: "relay refused the message (" + se.Reason.String() + ")",
		}
	case code >= 400 && code < 500:
		return &app.DeliveryError{
			Reason: app.ReasonSMTP4xx, Code: code, EnhancedCode: se.EnhancedStatusCode(),
			Detail: "relay deferred the message (" + se.Reason.String() + ")",
		}
	}
	return &app.DeliveryError{Reason: app.ReasonConnect, Detail: "connection failed during " + se.Reason.String()}
}

// replyCode returns the SMTP reply code err carries, if any.
func replyCode(err error) (int, bool) {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code, true
	}
	return 0, false
}

// isTLSError reports whether err comes from a TLS handshake or from
// verifying the relay's certificate.
func isTLSError(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		alert    tls.AlertError
		record   tls.RecordHeaderError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		op       *net.OpError
	)
	return errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &record) ||
		errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		(errors.As(err, &op) && op.Op == "remote error")
}

// isNetError reports whether err is a network failure: reset, closed,
// timed out, or ended early.
func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}
