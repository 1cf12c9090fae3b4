package relay

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/textproto"
	"strings"

	"github.com/carenotify/carenotify/services/email/internal/app"
)

// classifySetup classifies a failure to greet or EHLO. Nothing about the
// message has been sent yet; the next hop's reply text is still left
// out, as everywhere.
func classifySetup(err error) error {
	if code, ok := replyCode(err); ok {
		reason := app.ReasonSession
		if code >= 400 && code < 500 {
			reason = app.ReasonSMTP4xx
		}
		return &app.DeliveryError{Reason: reason, Code: code, Detail: "next hop refused the session"}
	}
	return &app.DeliveryError{Reason: app.ReasonConnect, Detail: err.Error()}
}

// classifyStartTLS classifies a failed STARTTLS: refused by a 5xx (the
// hop cannot do TLS: no_starttls) or a 4xx (try later), a certificate
// that does not verify (tls_unverified), a handshake the hop refused
// (tls_handshake), or a network failure (connect).
func classifyStartTLS(err error) error {
	if code, ok := replyCode(err); ok {
		if code >= 400 && code < 500 {
			return &app.DeliveryError{Reason: app.ReasonSMTP4xx, Code: code, Detail: "next hop deferred STARTTLS"}
		}
		return &app.DeliveryError{Reason: app.ReasonNoSTARTTLS, Code: code, Detail: "next hop refused STARTTLS"}
	}
	switch {
	case isVerifyError(err):
		return &app.DeliveryError{Reason: app.ReasonTLSUnverified, Detail: err.Error()}
	case isHandshakeError(err):
		return &app.DeliveryError{Reason: app.ReasonTLSHandshake, Detail: err.Error()}
	}
	return &app.DeliveryError{Reason: app.ReasonConnect, Detail: err.Error()}
}

// classifyTx classifies a failure of the mail transaction at stage (MAIL
// FROM, RCPT TO, DATA, end of data). The relay's replies often quote the
// recipient, so only codes are kept.
func classifyTx(stage string, err error) error {
	code, ok := replyCode(err)
	switch {
	case ok && code >= 500 && code < 600:
		return &app.DeliveryError{
			Permanent: true, Reason: app.ReasonSMTP5xx, Code: code, EnhancedCode: enhancedCode(err), Stage: stage,
			Detail: "relay refused the message (" + stage + ")",
		}
	case ok && code >= 400 && code < 500:
		return &app.DeliveryError{
			Reason: app.ReasonSMTP4xx, Code: code, EnhancedCode: enhancedCode(err), Stage: stage,
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

// isVerifyError reports whether err comes from verifying the next hop's
// certificate (untrusted, expired, wrong host name).
func isVerifyError(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

// isHandshakeError reports whether err is a TLS handshake the next hop
// refused or broke off by protocol (an alert, not TLS at all).
func isHandshakeError(err error) bool {
	var (
		alert  tls.AlertError
		record tls.RecordHeaderError
		op     *net.OpError
	)
	return errors.As(err, &alert) || errors.As(err, &record) || (errors.As(err, &op) && op.Op == "remote error")
}
