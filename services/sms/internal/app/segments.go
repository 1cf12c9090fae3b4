package app

import "unicode/utf16"

// Encoding is how an SMS body travels: 7-bit GSM 03.38 septets or UCS-2.
type Encoding string

// Encodings.
const (
	EncodingGSM7 Encoding = "GSM-7"
	EncodingUCS2 Encoding = "UCS-2"
)

// Segment sizes (3GPP TS 23.040 §9.2.3.24.1: a concatenated message loses
// 6 octets of each 140 to the user data header).
const (
	gsm7Single = 160 // septets in a message of one segment
	gsm7Multi  = 153 // septets per segment of a concatenated message
	ucs2Single = 70  // UTF-16 code units in one segment
	ucs2Multi  = 67  // code units per segment of a concatenated message
)

// gsm7Basic is the GSM 03.38 default alphabet (one septet each), without
// the escape character itself.
const gsm7Basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

// gsm7Extension are the characters of the extension table: an escape and
// the character, two septets each.
const gsm7Extension = "^{}\\[~]|€\f"

var (
	basicSet = runeSet(gsm7Basic)
	extSet   = runeSet(gsm7Extension)
)

func runeSet(s string) map[rune]bool {
	m := map[rune]bool{}
	for _, r := range s {
		m[r] = true
	}
	return m
}

// Segments returns the encoding body travels in and how many segments it
// takes: GSM-7 when every character is in the default alphabet or its
// extension table, else UCS-2. A segment boundary never splits an escape
// sequence (GSM-7) or a surrogate pair (UCS-2), as handsets cannot
// reassemble those. An empty body is one segment.
func Segments(body string) (Encoding, int) {
	gsm := true
	septets := make([]int, 0, len(body))
	for _, r := range body {
		switch {
		case basicSet[r]:
			septets = append(septets, 1)
		case extSet[r]:
			septets = append(septets, 2)
		default:
			gsm = false
		}
		if !gsm {
			break
		}
	}
	if gsm {
		return EncodingGSM7, count(septets, gsm7Single, gsm7Multi)
	}
	units := make([]int, 0, len(body))
	for _, r := range body {
		units = append(units, utf16.RuneLen(r))
	}
	return EncodingUCS2, count(units, ucs2Single, ucs2Multi)
}

// count packs characters of the given sizes into segments: one when they
// fit in single, else greedily into segments of multi without splitting a
// character.
func count(sizes []int, single, multi int) int {
	total := 0
	for _, n := range sizes {
		total += n
	}
	if total <= single {
		return 1
	}
	segs, used := 1, 0
	for _, n := range sizes {
		if used+n > multi {
			segs++
			used = 0
		}
		used += n
	}
	return segs
}
