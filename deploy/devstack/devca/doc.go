// Package devca is a tiny certificate authority for the development stack.
//
// [Ensure] creates, or loads when present, an ECDSA P-256 CA and a server
// certificate signed by it, so that the devstack's SMTP sink can offer
// STARTTLS and the email service can verify it exactly as it would verify a
// hospital relay: against a trusted root, never with verification turned off.
//
// The files are plain PEM (RFC 7468) in one directory:
//
//	ca.pem          the CA certificate (trust this one; 10 years)
//	ca-key.pem      the CA private key, PKCS #8 (mode 0600)
//	server.pem      the server certificate (1 year; reissued when expired,
//	                close to expiry, or missing a requested host)
//	server-key.pem  the server private key, PKCS #8 (mode 0600)
//
// Host names become DNS subject alternative names and IP addresses become IP
// subject alternative names (RFC 5280, section 4.2.1.6).
//
// This CA is for one developer's machine. Never trust it anywhere else.
package devca
