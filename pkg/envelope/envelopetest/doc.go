// Package envelopetest gives tests of code that seals PHI an in-memory
// [envelope.KeyStore] and a ready [envelope.Sealer] on a fresh random
// keyring, much as net/http/httptest does for HTTP. Production code uses
// [envelope.NewKVStore]; tests of the key store itself run against a real
// embedded JetStream server (see pkg/bus/bustest).
package envelopetest
