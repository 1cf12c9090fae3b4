package relay

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strings"

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

// classifyTx classifies a failure of the mail transaction at stage (MAIL
// FROM, RCPT TO, DATA, end of data). The relay's replies often quote the
// recipient, so only codes are kept.
func classifyTx(stage string, err error) error {
	code, ok := replyCode(err)
	switch {
	case ok && code >= 500 && code < 600:
		return &app.DeliveryError{
			Permanent: true, Reason: app.ReasonSMTP5xx, Code: code, EnhancedCode: enhancedCode(err),
			Detail: "relay refused the message (" + stage + ")",
		}
	case ok && code >= 400 && code < 500:
		return &app.DeliveryError{
			Reason: app.ReasonSMTP4xx, Code: code, EnhancedCode: enhancedCode(err),
			Detail: "relay deferred the message (" + stage + ")",
		}
	case ok:
		return &app.DeliveryError{Reason: app.ReasonSession, Code: code, Detail: "unexpected reply (" + stage + ")"}
	}
	return &app.DeliveryError{Reason: app.ReasonConnect, Detail: "connection failed during " + stage}
}

// enhancedCode returns the RFC 3463 status code that starts a reply's
// text ("5.1.1"), or "". Nothing else of the text is kept.
func enhancedCode(err error) string {
	var te *textproto.Error
	if !errors.As(err, &te) {
		return ""
	}
	first, _, _ := strings.Cut(strings.TrimSpace(te.Msg), " ")
	parts := strings.Split(first, ".")
	if len(parts) != 3 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return ""
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return ""
		}
	}
	return first
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
