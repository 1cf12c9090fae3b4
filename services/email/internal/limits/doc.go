// Package limits enforces the email policy's per-destination limits and
// IP warm-up caps in Redis, behind app.Limiter, so that every replica of
// the service shares them.
//
//   - Concurrency: a sorted set per tenant and destination host whose
//     members are the deliveries under way, scored by when their lease ends
//     (a killed worker's slot frees itself), taken and counted by one
//     script against Redis's clock.
//   - Rate: GCRA (generic cell rate algorithm) through
//     github.com/go-redis/redis_rate, as ingest's source limits.
//   - Warm-up: one counter per sending identity and UTC day, raised only
//     while under the day's cap.
//
// Destination host names and identities are not PHI.
package limits
