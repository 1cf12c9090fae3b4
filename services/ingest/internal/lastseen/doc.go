// Package lastseen keeps ingest's last-seen state of each real-world
// resource (an appointment, encounter, lab report or patient) in Redis,
// behind app.StateStore.
//
// Layout, every key hash-tagged by tenant (pkg/store.Key) so that the
// Lua scripts touch one Redis Cluster slot:
//
//	cn:{tenant}:ingest:rk:<key hash>   → record id          (index; TTL)
//	cn:{tenant}:ingest:rs:<record id>  → sealed JSON record  (state + key hashes; TTL)
//	cn:{tenant}:ingest:rl:<hash or id> → lock token          (PX lock TTL)
//
// A resource is found by any of its keys: its FHIR logical id on one
// source, or one of its business identifiers (system|value). Key names
// hold only HMAC-SHA256 hashes of those keys, under a key derived from the
// audit pseudonym key, because business identifiers are PHI. The record
// (times, identifiers in the subject reference) is sealed with
// pkg/envelope, bound to its tenant and key. A record id is the key hash
// that created it: the smallest business-identifier hash when there is
// one, so the same identifiers by either protocol name the same record.
//
// Lock takes, in one script and all or nothing, a lock on every key of
// the arrival and on every record those keys point at, then reads the
// record; Commit writes the record and the index in one script that first
// checks the locks are still held (a lock that expired fails the write).
// When keys point at two different records, the first key's record is
// used and the others' keys are pointed at it; the other record expires.
package lastseen
