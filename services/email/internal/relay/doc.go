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
// Later issues put MX delivery (with MTA-STS/DANE), DKIM signing and S/MIME
// or OpenPGP beside this package, as other app.Mailer implementations or
// steps in compose.
package relay
