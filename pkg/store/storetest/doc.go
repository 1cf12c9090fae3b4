// Package storetest gives tests a real Redis: the one named by REDIS_URL
// when set, otherwise a throwaway redis-server on a free port that stops when
// the test ends.
package storetest
