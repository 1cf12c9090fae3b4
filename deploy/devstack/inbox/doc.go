// Package inbox is the development mail sink: it stands in for a hospital's
// SMTP relay on a developer's machine and in end-to-end tests, keeps what it
// receives in memory, and shows it on a web page and a JSON API.
//
// The SMTP side ([Inbox.NewSMTPServer]) speaks SMTP (RFC 5321) with STARTTLS
// (RFC 3207) and, once the session is encrypted, accepts any AUTH PLAIN
// credentials (RFC 4954, RFC 4616). With requireTLS it refuses MAIL FROM
// before STARTTLS with 530 5.7.0, as a relay that mandates TLS does. Received
// messages are decoded as MIME (RFC 2045, RFC 2046): the first text/plain and
// text/html parts, quoted-printable and base64 transfer encodings, non-UTF-8
// charsets, and encoded words in headers (RFC 2047).
//
// The HTTP side ([Inbox.Handler]) serves:
//
//	GET    /                  HTML list of messages, newest first
//	GET    /messages/{id}     one message: headers, text body, sandboxed HTML body
//	GET    /messages/{id}/raw the message as received (text/plain)
//	GET    /api/messages      {"messages":[...]}, newest first; ?to=addr filters
//	DELETE /api/messages      removes every message
//	GET    /healthz           200 "ok"
//
// For each email it shows how it travelled: the TLS version it saw, the
// DKIM result of checking the first signature (RFC 6376, go-msgauth) with
// the keys given to [Inbox.SetDKIMKeys], whether the body arrived S/MIME
// (RFC 8551) or PGP/MIME (RFC 3156) encrypted, and the sender's own report
// ([Inbox.RecordDelivery]: whether it verified the inbox's certificate),
// which the devstack takes from the email service's DELIVERY events.
//
// The page and the API show message contents, addresses and subjects by
// design: the devstack carries synthetic data only. The package never logs
// them; logs carry message ids and sizes only.
//
// End-to-end tests use [Inbox.Wait] to block until the message they expect
// has arrived.
package inbox
