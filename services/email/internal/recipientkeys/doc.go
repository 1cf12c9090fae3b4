// Package recipientkeys keeps recipients' S/MIME certificates and OpenPGP
// public keys, per tenant, in Redis behind app.KeyRegistry, and checks
// keys before they are put on record.
//
// One key per recipient:
//
//	cn:{tenant}:email:rkey:<hex HMAC-SHA256(tenant "|" normalised address)>
//
// The HMAC key is derived from the audit pseudonym key
// (EMAIL_AUDIT_PSEUDONYM_KEY_FILE), so the key name does not reveal the
// address and cannot be computed without the secret. The value is the
// JSON app.KeyRecord sealed with pkg/store (bound to tenant and key name):
// a certificate is not secret, but it names the recipient, and which
// addresses have keys is PHI-adjacent. Records do not expire.
//
// [LoadDir] puts the keys of a directory on record at start
// (EMAIL_RECIPIENT_KEYS_DIR); the admin API (PUT /admin/recipient-keys)
// sets them at run time. S/MIME certificates must hold an RSA key (what
// smallstep/pkcs7 encrypts to, RFC 8551 §2.3); OpenPGP keys must have an
// encryption-capable (sub)key valid now (RFC 9580 §5.2.3.29).
package recipientkeys
