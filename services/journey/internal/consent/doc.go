// Package consent keeps the journey service's consent records,
// sent-email mappings and frequency-cap send counts in Redis
// (ARCHITECTURE.md, "State (Redis)"); it implements app.ConsentStore and
// app.FrequencyCaps.
//
// Every value is sealed with pkg/envelope through store.SetSealed, bound
// to its tenant and key: a record holds the patient's id and a free-text
// evidence reference, both possibly PHI. Keys never hold the patient id in
// clear: they use a keyed hash (HMAC-SHA256) of "tenant|patient" with a
// key derived from the audit pseudonym key
// (JOURNEY_AUDIT_PSEUDONYM_KEY_FILE), so a guessed id cannot be checked
// against the keys, and the hashes differ from the audit trail's patient
// references.
//
//	cn:{<tenant>}:consent:<hmac>:<channel>:<purpose>   consent record (JSON, sealed), no expiry
//	cn:{<tenant>}:sent:<idempotency key>                journey's sent email (JSON, sealed), 90 days
//	cn:{<tenant>}:freq:<hmac>:<purpose>                 sends for frequency caps: sorted set of idempotency
//	                                                    keys scored by send time (ms), 31 days

package consent
