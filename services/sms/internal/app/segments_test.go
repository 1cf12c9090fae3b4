package app

import (
	"strings"
	"testing"
)

func TestSegments(t *testing.T) {
	tests := []struct {
		name     string
		give     string
		wantEnc  Encoding
		wantSegs int
	}{
		{"empty", "", EncodingGSM7, 1},
		{"short ascii", "Your appointment is on Monday at 9:00.", EncodingGSM7, 1},
		{"160 gsm", strings.Repeat("a", 160), EncodingGSM7, 1},
		{"161 gsm", strings.Repeat("a", 161), EncodingGSM7, 2},
		{"306 gsm", strings.Repeat("a", 306), EncodingGSM7, 2},
		{"307 gsm", strings.Repeat("a", 307), EncodingGSM7, 3},
		{"gsm accents", "Cita el miércoles ¿Ñoño? àèéùìò ÄÖÜäöü", EncodingGSM7, 1},
		{"spanish acute is ucs2", "¿Vendrá?", EncodingUCS2, 1}, // á is not in GSM 03.38
		// 80 euro signs are 160 septets: one segment.
		{"extension fills one", strings.Repeat("€", 80), EncodingGSM7, 1},
		// 152 septets then an escape pair that must not be split: 3 segments
		// would be wrong, 2 right, and the pair moves to the second.
		{"escape not split", strings.Repeat("a", 152) + "€" + strings.Repeat("a", 10), EncodingGSM7, 2},
		{"ucs2 accent outside gsm", "Rendez-vous confirmé ç", EncodingUCS2, 1}, // ç is not in GSM-7 (only Ç)
		{"70 ucs2", strings.Repeat("я", 70), EncodingUCS2, 1},
		{"71 ucs2", strings.Repeat("я", 71), EncodingUCS2, 2},
		{"134 ucs2", strings.Repeat("я", 134), EncodingUCS2, 2},
		{"135 ucs2", strings.Repeat("я", 135), EncodingUCS2, 3},
		// An emoji is a surrogate pair (2 code units): 35 fill one segment.
		{"emoji one", strings.Repeat("😀", 35), EncodingUCS2, 1},
		// 66 units then a pair: the pair moves to the next segment.
		{"pair not split", strings.Repeat("я", 66) + "😀" + strings.Repeat("я", 10), EncodingUCS2, 2},
		{"chinese", "您的预约已确认", EncodingUCS2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, segs := Segments(tt.give)
			if enc != tt.wantEnc || segs != tt.wantSegs {
				t.Errorf("Segments() = %s, %d; want %s, %d", enc, segs, tt.wantEnc, tt.wantSegs)
			}
		})
	}
}

func FuzzSegments(f *testing.F) {
	for _, s := range []string{"", "hello", strings.Repeat("€", 90), "😀я", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc, segs := Segments(s)
		if segs < 1 {
			t.Fatalf("Segments(%q) = %d segments", s, segs)
		}
		if enc != EncodingGSM7 && enc != EncodingUCS2 {
			t.Fatalf("Segments(%q) encoding %q", s, enc)
		}
	})
}
