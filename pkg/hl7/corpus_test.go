package hl7_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/hl7"
	"github.com/carenotify/carenotify/pkg/hl7/hl7test"
)

// TestCorpus parses every corpus file: each message of every file outside
// malformed/ parses, and the malformed files fail where expected.
func TestCorpus(t *testing.T) {
	malformed := map[string]*hl7.ParseError{
		// Parses as a message; hl7map rejects it (SIU without SCH).
		"malformed/nodehl7-misc-bad-phone-example.hl7": nil,
		"malformed/pyhl7-sample_bad_batch1.hl7":        {Segment: "BHS", SegIndex: 4, Code: "100"},
		"malformed/pyhl7-sample_bad_file.hl7":          {Segment: "EVN", SegIndex: 3, Code: "100"},
		"malformed/pyhl7-sample_bad_file2.hl7":         {Segment: "FHS", SegIndex: 5, Code: "100"},
		"malformed/pyhl7-sample_bad_file3.hl7":         {Segment: "EVN", SegIndex: 2, Code: "100"},
	}
	files := hl7test.Files(t)
	if len(files) < 50 {
		t.Fatalf("corpus has %d files, want the 58 of SOURCES.md", len(files))
	}
	for _, rel := range files {
		t.Run(rel, func(t *testing.T) {
			data := hl7test.Read(t, rel)
			b, err := hl7.SplitBatch(data)
			want, isMalformed := malformed[rel]
			if isMalformed && want != nil {
				var pe *hl7.ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("SplitBatch() = %v, want a *ParseError", err)
				}
				got := &hl7.ParseError{Segment: pe.Segment, SegIndex: pe.SegIndex, Field: pe.Field, Code: pe.Code}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("SplitBatch() error location (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("SplitBatch() = %v", err)
			}
			if len(b.Messages) == 0 {
				t.Fatal("no messages")
			}
			for i, raw := range b.Messages {
				m, err := hl7.Parse(raw)
				if err != nil {
					t.Fatalf("message %d: Parse() = %v", i+1, err)
				}
				if m.Type().Code == "" {
					t.Errorf("message %d: no message type", i+1)
				}
				if _, err := m.Time(nil); err != nil {
					t.Errorf("message %d: Time() = %v", i+1, err)
				}
				ack, err := hl7.Parse(hl7.BuildACK(m, hl7.AckAccept, nil, fixedNow))
				if err != nil {
					t.Fatalf("ACK does not parse: %v", err)
				}
				if got, want := ack.Get("MSA-2"), m.ControlID(); got != want {
					t.Errorf("ACK MSA-2 = %q, want %q", got, want)
				}
			}
			if !hl7.IsBatch(data) && len(b.Messages) == 1 {
				if _, err := hl7.Parse(data); err != nil {
					t.Errorf("Parse(whole file) = %v", err)
				}
			}
		})
	}
}

// TestCorpusTypes checks the message type read from each folder's files.
func TestCorpusTypes(t *testing.T) {
	for _, rel := range hl7test.Files(t) {
		folder, _, _ := strings.Cut(rel, "/")
		code, trigger, ok := strings.Cut(folder, "_")
		if !ok {
			continue
		}
		if rel == "SIU_S12/msconv-SIU_12.hl7" {
			continue // filed as SIU^S12 but an ADT^A60 (allergy update)
		}
		m, err := hl7.Parse(hl7test.Read(t, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		if got := m.Type(); got.Code != code || got.Trigger != trigger {
			t.Errorf("%s: Type() = %v, want %s^%s", rel, got, code, trigger)
		}
	}
}
