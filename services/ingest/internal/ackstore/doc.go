// Package ackstore keeps the first acknowledgement of every HL7 v2
// message in Redis, behind mllp.AckStore, so that a message resent with
// the same sending application (MSH-3), facility (MSH-4) and control id
// (MSH-10) is answered with the identical acknowledgement and not
// processed again (HL7 v2.5.1 section 2.10.1: MSH-10 is unique per
// sending system; the sender resends what it got no acknowledgement
// for).
//
// Layout, every key hash-tagged by tenant (pkg/store.Key) so that the
// store script touches one Redis Cluster slot:
//
//	cn:{tenant}:ingest:ack:<key hash>   → sealed JSON {digest, code, ack}  (TTL)
//	cn:{tenant}:ingest:ackl:<key hash>  → claim token                     (PX lock TTL)
//
// The key hash is an HMAC-SHA256 of source, MSH-3, MSH-4 and MSH-10
// under a key derived from the audit pseudonym key; the value is sealed
// with pkg/envelope bound to tenant and key, since an ERR segment may
// quote a field. Claim takes the lock with SET NX PX, so of two
// connections (or replicas) receiving the same message at once one
// processes it and the other waits for the acknowledgement it stores.
package ackstore
