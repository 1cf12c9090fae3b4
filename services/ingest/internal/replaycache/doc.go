// Package replaycache remembers the HMAC signatures ingest has accepted,
// in Redis, so that a captured signed request cannot be replayed while its
// timestamp is still inside the allowed skew. Replicas share it.
//
// A key is cn:{<tenant>}:ingest:sig:<SHA-256 of source and signature>,
// set with SET NX and a TTL at least the skew window; it holds "1". Key
// names and values hold no PHI and no secret (an HMAC output is no
// secret, and only its hash is stored).
package replaycache
