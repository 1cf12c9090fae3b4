// Package audit is carenotify's tamper-evident audit trail: one record per
// access to PHI and per message decision, hash-chained and periodically
// signed, in the JetStream stream AUDIT. It implements the audit controls
// and integrity safeguards of the HIPAA Security Rule, 45 CFR §164.312(b)
// and (c)(1)
// (https://www.ecfr.gov/current/title-45/subtitle-A/subchapter-C/part-164/subpart-C/section-164.312).
//
// # Records
//
// A [Record] says who ([Actor]: a service, a person or an EHR source) did
// what (Action, e.g. "phi.read", "message.decided") to which object
// ([Object]: a type and an id such as "ClinicalEvent" and the event id, or
// "EmailMessage" and the message id), for which tenant and patient, for
// what purpose, with which outcome (success, denied, failure, suppressed)
// and machine-coded reason, when, and under which trace id. Detail adds
// machine tokens that explain a decision (the channel, a message id, the
// consent record that allowed or stopped it), validated like ids.
//
// The trail holds no identifier in clear. A patient appears only as
// PatientRef, the hex HMAC-SHA256, under the pseudonym key, of
// "<tenant>|<patient logical id>" ([PatientRef]): the Writer takes the
// clear id in [Entry].Patient and stores only the hash, and [Query] hashes
// the id it is asked for the same way. Without the key, a reference can
// neither be traced back to a patient nor computed from a guessed id.
// Objects and actors are named by opaque ids; the Writer rejects ids with
// spaces or '@' and reasons that are not short machine codes, and its
// errors name the bad field, never the value.
//
// # Chains
//
// Records form one chain per tenant and service, on the subject
// audit.<tenant>.<service>. Seq numbers a chain's records from 1; Prev is
// the Hash of the record before ("" for Seq 1); Hash is the hex SHA-256 of
// the record's canonical encoding.
//
// The canonical encoding is encoding/json's encoding of [Record] with Hash
// empty: fields in declaration order (seq, time, tenant, service, actor
// {type, id}, action, object {type, id}, patientRef, purpose, outcome,
// reason, detail only when it has entries (keys sorted, as encoding/json
// sorts map keys), traceId, prev, then signature only on checkpoints), no
// whitespace, times in UTC as RFC 3339 with nanoseconds, strings escaped
// as encoding/json does (including <, > and & as \u003c, \u003e, \u0026).
// The stored message is the same encoding with "hash" appended, so
// stored bytes are checked byte for byte, not only through the hash.
// Everything the Writer accepts is ASCII that JSON does not escape (ids,
// codes, tokens, hex, base64), so the encoding does not hinge on
// encoding/json's escaping rules.
//
// Writers append with JetStream's expected-last-sequence-per-subject
// condition, so two replicas of a service writing the same chain never
// fork it: the loser reloads the head and retries. Each message's
// Nats-Msg-Id is "<tenant>.<service>.<seq>". [Writer.Record] returns only
// after JetStream acknowledged the record. The AUDIT stream ([bus.Audit])
// denies message deletes and purges.
//
// # Checkpoints
//
// A Writer given an Ed25519 signing key ([WithSigningKey],
// [LoadSigningKey]) appends a checkpoint record after every n records it
// writes to a chain ([WithCheckpointEvery], default 1000) and for each
// chain on [Writer.Close]. A checkpoint is a record with Action
// "audit.checkpoint", Object {"AuditChain", hash of the head it signs},
// Reason "interval" or "close", and Signature: the base64 Ed25519
// signature of
//
//	"carenotify-audit-checkpoint/v1\n<tenant>\n<service>\n<head seq>\n<head hash>"
//
// where the head is the record just before the checkpoint. Without a
// signing key a Writer writes no checkpoints, and the chain alone guards
// the trail. The hash chain can be recomputed by anyone who can write to
// the stream; a checkpoint can only be made with the signing key, so a
// rewritten chain shows up as checkpoints that no longer verify (or
// Report.Unsealed records after the last good one).
//
// # Verifying
//
// [Verify] and [VerifyAll] read a chain in stream order, recompute every
// hash, and report every problem, not just the first:
//
//   - [Deleted]: a gap in Seq (records N..M missing);
//   - [Altered]: a stored Hash that is not the hash of the content, bytes
//     that are not the canonical encoding, a record naming another chain,
//     or a message that is no audit record at all;
//   - [Broken]: a Prev that is not the Hash of the record before;
//   - [Reordered]: a Seq not above the one before (a record moved to the
//     end is matched back to its gap, whose links are then checked);
//   - [BadSignature]: a checkpoint whose signature does not verify with
//     the public key ([LoadVerifyKey]).
//
// A gap at the start of a chain counts as Expired, not Deleted, when the
// first retained record is older than the stream's MaxAge less 31 days
// (records age out oldest first). Records cut
// from the end of a chain leave no gap; compare Report.LastSeq and
// Report.Head with a value noted earlier, and keep Report.Unsealed small
// with checkpoints.
//
// [Query] filters records by tenant, service, patient (or patient
// reference), object, actor,
// action and time; carenotifyctl audit verify and audit query wrap both.
package audit
