package hl7

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Unescape decodes the escape sequences of s (HL7 v2.5.1 section 2.7):
// \F\ \S\ \T\ \R\ \E\ and \P\ become the delimiter they name, \Xhh...\
// the bytes it spells (taken as UTF-8, else as ISO 8859-1), \.br\ and
// \.sp\ newlines; other formatting commands, highlighting (\H\ \N\) and
// character set switches (\C..\ \M..\) are dropped, as are locally defined
// \Z..\ sequences. An escape character without its closing partner is
// kept as it is.
func Unescape(s string, d Delimiters) string {
	if d.Escape == 0 || strings.IndexByte(s, d.Escape) < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.IndexByte(s, d.Escape)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		rest := s[i+1:]
		j := strings.IndexByte(rest, d.Escape)
		if j < 0 {
			b.WriteString(s[i:])
			return b.String()
		}
		seq := rest[:j]
		s = rest[j+1:]
		switch {
		case seq == "F":
			b.WriteByte(d.Field)
		case seq == "S":
			b.WriteByte(d.Component)
		case seq == "T":
			b.WriteByte(d.Subcomponent)
		case seq == "R":
			b.WriteByte(d.Repetition)
		case seq == "E":
			b.WriteByte(d.Escape)
		case seq == "P" && d.Truncation != 0:
			b.WriteByte(d.Truncation)
		case seq == ".br":
			b.WriteByte('\n')
		case strings.HasPrefix(seq, ".sp"):
			n, err := strconv.Atoi(strings.TrimSpace(seq[3:]))
			if err != nil || n < 1 {
				n = 1
			}
			b.WriteString(strings.Repeat("\n", min(n, 100)))
		case len(seq) > 1 && seq[0] == 'X' && len(seq)%2 == 1:
			raw := make([]byte, 0, len(seq)/2)
			ok := true
			for k := 1; k+1 < len(seq); k += 2 {
				v, err := strconv.ParseUint(seq[k:k+2], 16, 8)
				if err != nil {
					ok = false
					break
				}
				raw = append(raw, byte(v))
			}
			if !ok {
				continue
			}
			if utf8.Valid(raw) {
				b.Write(raw)
			} else {
				b.WriteString(latin1ToUTF8(raw))
			}
		default:
			// \H\ \N\ \.in\ \.ti\ \.sk\ \.fi\ \.nf\ \.ce\ \Cxxyy\ \Mxxyyzz\
			// \Zxx\ and anything unknown: dropped.
		}
	}
}

// Escape encodes s so that it can be written as one primitive value:
// each delimiter becomes its escape sequence and CR/LF become \.br\.
func Escape(s string, d Delimiters) string {
	if d.Escape == 0 {
		return strings.Map(func(r rune) rune {
			if r == rune(d.Field) || r == rune(d.Component) || r == rune(d.Repetition) || r == rune(d.Subcomponent) || r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, s)
	}
	var b strings.Builder
	e := string(d.Escape)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == d.Escape:
			b.WriteString(e + "E" + e)
		case c == d.Field:
			b.WriteString(e + "F" + e)
		case c == d.Component:
			b.WriteString(e + "S" + e)
		case c == d.Repetition:
			b.WriteString(e + "R" + e)
		case d.Subcomponent != 0 && c == d.Subcomponent:
			b.WriteString(e + "T" + e)
		case d.Truncation != 0 && c == d.Truncation:
			b.WriteString(e + "P" + e)
		case c == '\r' && i+1 < len(s) && s[i+1] == '\n':
		case c == '\r' || c == '\n':
			b.WriteString(e + ".br" + e)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
