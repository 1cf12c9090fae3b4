// Package redisproc starts a throwaway redis-server process on a free
// loopback port, for tests (storetest) and for the one-machine development
// stack when no REDIS_URL is given.
package redisproc
