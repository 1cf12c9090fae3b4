// Package relay delivers email to one configured SMTP relay with
// github.com/wneessen/go-mail, behind app.Mailer.
//
// Transport security (ARCHITECTURE.md "Security and privacy",
// 45 CFR §164.312(e)(1)): every connection must upgrade with STARTTLS (RFC
// 3207, go-mail's TLSMandatory) to TLS 1.2 or later, and the relay's
// certificate must verify against the system roots plus the configured CA
// file for the configured host name. A relay that offers no STARTTLS, or
// whose certificate does not verify, gets nothing: no MAIL FROM, no RCPT,
// no DATA. SMTP AUTH (RFC 4954, PLAIN, or LOGIN when only that is offered)
// runs only inside that TLS session and only when a username is set.
//
// Outcomes are classified into app.DeliveryError values whose text never
// holds an address or the relay's reply text (replies often echo the
// recipient): a 5xx reply to the transaction is permanent (bounced); 4xx
// replies, connection failures, timeouts and TLS failures are temporary,
// since the relay or its certificate may be fixed.
//
// Sessions are reused: a Relay keeps up to one idle session per worker and
// sends the next message over it (RSET between messages, RFC 5321 §4.1.1.5),
// so TCP, TLS and AUTH are paid once per EMAIL_SMTP_MAX_MESSAGES_PER_CONNECTION
// messages. Only sessions that passed the checks above are kept, so a reused
// session is the verified one. A session is closed after a network error, a
// 421 reply, a failed RSET, its message limit or EMAIL_SMTP_IDLE_TIMEOUT
// unused. A reused session found dead before MAIL FROM was accepted carried
// nothing of the message, which is then sent at once over a new session;
// any later failure is classified and left to the worker's retry.
//
// Messages are composed with go-mail, signed with DKIM (RFC 6376, rsa-sha256
// or ed25519-sha256 per RFC 8463, go-msgauth) when a key is configured, carry
// one-click List-Unsubscribe headers (RFC 8058) when a URL is configured, and
// leave with a VERP envelope sender when one is configured.
//
// A message whose app.Outgoing carries the recipient's key is encrypted
// after composing and before DKIM signing (encrypt.go): S/MIME
// enveloped-data (RFC 8551, smallstep/pkcs7) or PGP/MIME (RFC 3156,
// ProtonMail go-crypto), the composed MIME body and protected headers
// inside, the routing headers and a PHI-free Subject outside.
//
// With Options.Direct the same client delivers to the recipient domain's
// MX hosts instead (mx.go: RFC 5321 §5.1 order, implicit MX, RFC 7505 null
// MX), honouring MTA-STS policies (mtasts.go, RFC 8461) when Options.STS
// is set. DANE (RFC 7672) is not built.
package relay
