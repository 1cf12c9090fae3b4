// Package envelope encrypts protected health information (PHI) in the
// application, before it reaches JetStream or Redis, as HIPAA's technical
// safeguards ask: encryption and decryption of electronic PHI, 45 CFR
// §164.312(a)(2)(iv), and integrity, §164.312(c)
// (https://www.ecfr.gov/current/title-45/subtitle-A/subchapter-C/part-164/subpart-C/section-164.312).
// Which fields are sealed where is described in the README; this page
// describes the cryptography.
//
// # Two layers of keys
//
// Key-encryption keys (KEKs) are 256-bit AES keys that never leave the
// operator's secret store. A [Keyring] loads them from a directory of
// mounted secret files (a Kubernetes Secret, for instance):
//
//	<kid>.key   32 random bytes, standard base64, one line (mode 0600)
//	primary     the kid that wraps new data keys
//
// A kid is 1 to 32 of [a-z0-9-]. A key file that anyone may write is
// refused; one that group or others may read loads with a warning (see
// [Keyring.Warnings]). Key bytes are never logged, printed or put in an
// error message; [Keyring] and [Sealer] format as their key ids only.
//
// Data keys (DEKs) encrypt the PHI. There is one per tenant per UTC day,
// named "<tenant>.<YYYYMMDD>", 32 bytes from crypto/rand. A DEK is stored
// only wrapped: AES-256-GCM under a KEK, with a random 96-bit nonce and the
// associated data "cn-dek|" + DEK id + "|" + kid, so a wrapped key cannot be
// moved to another id or relabelled with another KEK. Wrapped DEKs live in a
// [KeyStore]; in production that is the JetStream key-value bucket
// CN_DATA_KEYS ([NewKVStore]). The first service to seal for a tenant on a
// given day creates that day's DEK; a service that loses the race reads the
// winner's, so every service converges on one DEK per tenant-day. Unwrapped
// DEKs are cached in memory (an LRU of 1024 by default).
//
// # Sealed values
//
// [Sealer.Seal] encrypts a value with the current DEK of its tenant and
// returns:
//
//	"CN" | version 0x01 | len(dek id) (1 byte) | dek id | nonce (12) | AES-256-GCM ciphertext | tag (16)
//
// The associated data is the header (everything before the nonce) followed
// by the [Binding], Tenant, Kind and ID, each prefixed with its length as a
// 4-byte big-endian integer. A ciphertext copied to another record, kind or
// tenant therefore fails to open, as does one with any bit changed, with
// [ErrTampered]; the error does not say which check failed. Nonces are
// random (crypto/cipher.NewGCMWithRandomNonce): sealing the same value twice
// gives different ciphertexts, and one DEK stays far below the 2^32 messages
// that random nonces allow, since it covers a single tenant-day.
//
// [Sealer.Open] reports a value without the "CN" magic as [ErrNotSealed].
// That is a programming or migration error, not a licence to treat the
// bytes as plaintext: callers must not fall back to using them as they are.
// A DEK or KEK the service cannot find is [ErrUnknownKey]. None of the
// errors carry PHI: at most a DEK id (tenant and date) or a kid.
//
// # Rotation
//
// A new primary KEK wraps new DEKs; old KEKs stay in the keyring to unwrap
// the DEKs they wrapped. [Sealer.Rewrap] then re-wraps every DEK under the
// primary, with a compare-and-set update, without touching a single sealed
// payload (the DEKs themselves do not change). Once no DEK is wrapped by an
// old KEK ([KEKUsage]), the old KEK can be retired ([RetireKEK]).
//
// Services load the keyring once, at start: a new primary takes effect when
// they are restarted. Across a fleet, make the new KEK known everywhere
// before it becomes primary, so no service meets a DEK wrapped by a KEK it
// does not hold: `carenotifyctl keys generate`, roll the services,
// `carenotifyctl keys rotate --kid <new>`, roll again, `carenotifyctl keys
// rewrap`, `carenotifyctl keys retire --kid <old>`. (`keys rotate` without
// --kid generates and promotes in one step, for a single process or a
// maintenance window.)
//
// The CN_DATA_KEYS bucket keeps one revision per DEK, so a re-wrap removes
// the copy wrapped by the old KEK from the bucket. Backups taken before the
// re-wrap still hold it: a retired KEK must be destroyed, not archived.
package envelope
