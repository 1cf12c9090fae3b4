package hl7_test

import (
	"testing"

	"github.com/carenotify/carenotify/pkg/hl7"
	"github.com/carenotify/carenotify/pkg/hl7/hl7test"
)

// FuzzParse feeds arbitrary bytes to Parse, SplitBatch, the accessors and
// BuildACK: none may panic, and an ACK always parses.
func FuzzParse(f *testing.F) {
	for _, rel := range hl7test.Files(f) {
		f.Add(hl7test.Read(f, rel))
	}
	f.Add([]byte(sample))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		if b, err := hl7.SplitBatch(data); err == nil {
			for _, raw := range b.Messages {
				_, _ = hl7.Parse(raw)
			}
		}
		m, err := hl7.Parse(data)
		var errs []*hl7.ParseError
		if err != nil {
			errs = append(errs, err.(*hl7.ParseError))
		} else {
			_ = m.Type()
			_ = m.ControlID()
			_, _ = m.Time(nil)
			for _, s := range m.Segments("") {
				for i := 0; i <= s.NumFields()+1; i++ {
					for _, r := range s.Field(i).Reps() {
						_ = r.Comp(1).Sub(2).String()
						_ = r.Comp(2).String()
					}
				}
			}
			_ = m.Get("PID-5-1")
			_ = m.Get("OBX[2]-5(2)-1-1")
		}
		ack := hl7.BuildACK(m, hl7.AckReject, errs, fixedNow)
		if _, err := hl7.Parse(ack); err != nil {
			t.Fatalf("ACK does not parse: %v\n%q", err, ack)
		}
	})
}
