package audit

import (
	"testing"

	"github.com/carenotify/carenotify/pkg/bus"
)

// BenchmarkRecord measures records appended per second through a real
// embedded JetStream server (one chain, one goroutine, a checkpoint every
// 1000).
func BenchmarkRecord(b *testing.B) {
	_, js := startAudit(b, bus.Audit(1))
	w := newTestWriter(b, js, "journey", WithSigningKey(testSigner))
	e := testEntry("north", "pat-1", 1)
	for b.Loop() {
		if err := w.Record(b.Context(), e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
