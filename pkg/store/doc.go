// Package store connects to Redis, carenotify's store of fast, rebuildable
// state (last-seen versions, journey instances, consent, idempotency keys,
// delivery records), and names its keys.
//
// Keys carry a hash tag so related keys land in one Redis Cluster slot:
// cn:{<tenant>}:... for tenant-wide state and cn:{<tenant>:<patient>}:... for
// a patient's state. Keys never contain PHI in clear: patient parts are
// logical ids or keyed hashes, never names, MRNs, emails or phone numbers.
package store
