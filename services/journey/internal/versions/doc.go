// Package versions keeps every applied version of every journey file in
// the JetStream stream JOURNEY_VERSIONS, one subject per journey
// (journey.versions.<journey id>), and lets every journey replica follow
// the current versions as they change.
//
// A stream rather than a KV bucket: a KV bucket keeps at most 64 versions
// of a key, and the brief is that every applied version is kept. The
// stream has no age, count or size limit and denies deletes and purges,
// so the history is complete; the current version of a journey is the
// last message on its subject, which is what [Store.Watch] follows
// (an ordered consumer delivering the last message per subject, then
// every new one: a KV watch by hand). Journey files carry no PHI, so the
// records are not sealed.
//
// Version numbers are per journey, 1, 2, 3 …; an append publishes with
// the expected last sequence of the journey's subject, so two editors
// applying at once get distinct numbers (the loser retries) and two
// replicas seeding at once store one version 1.
package versions
