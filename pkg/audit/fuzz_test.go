package audit

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzChecker feeds arbitrary message bodies to the verifier: it must not
// panic, and a body that is not JSON must be reported as Altered. Seeds
// live in testdata/fuzz/FuzzChecker.
func FuzzChecker(f *testing.F) {
	r := Record{Seq: 1, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Tenant: "north", Service: "journey",
		Actor: Actor{Type: ActorService, ID: "journey"}, Action: ActionPHIRead, Outcome: OutcomeSuccess}
	r.Hash, _ = r.computeHash()
	f.Add(r.encode())
	f.Add([]byte(`{"seq":1}`))
	f.Add([]byte(`{"seq":18446744073709551615,"time":"9999-12-31T23:59:59.999999999+23:59"}`))
	pub := testVerifyKey()
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newChecker("north", "journey", pub)
		c.add(1, data)
		c.add(2, data)
		rep := c.finish(time.Now(), 24*time.Hour)
		if !json.Valid(data) && rep.Count(Altered) != 2 {
			t.Errorf("non-JSON body: %d Altered, want 2 (%v)", rep.Count(Altered), rep.Problems)
		}
		for _, p := range rep.Problems {
			_ = p.String()
		}
	})
}
