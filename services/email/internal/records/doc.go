// Package records keeps the email service's idempotency keys, delivery
// records and per-message locks in Redis, behind app.Store.
//
// Keys (tenant-scoped and hash-tagged by store.Key, so they work on Redis
// Cluster):
//
//	cn:{tenant}:email:idem:<sha256(idempotency key)>  string: message id
//	cn:{tenant}:email:msg:<message id>                 hash: the delivery record
//	cn:{tenant}:email:lock:<message id>                string: worker lock token
//
// Nothing here is PHI: the idempotency key is stored hashed, and records hold
// status, attempts, reason codes, times and transport facts only.
package records
