package hl7

import (
	"bytes"
	"strconv"
	"strings"
)

// Delimiters are a message's encoding characters, from MSH-1 and MSH-2.
type Delimiters struct {
	// Field separates fields ('|').
	Field byte
	// Component separates components ('^').
	Component byte
	// Repetition separates repetitions ('~').
	Repetition byte
	// Escape starts and ends escape sequences ('\'); 0 when MSH-2 has none.
	Escape byte
	// Subcomponent separates subcomponents ('&'); 0 when MSH-2 has none.
	Subcomponent byte
	// Truncation is the v2.7 truncation character ('#'); 0 when absent.
	Truncation byte
}

// DefaultDelimiters are |^~\& (no truncation character).
var DefaultDelimiters = Delimiters{Field: '|', Component: '^', Repetition: '~', Escape: '\\', Subcomponent: '&'}

// encoding returns MSH-2 for d.
func (d Delimiters) encoding() string {
	b := []byte{d.Component, d.Repetition}
	if d.Escape != 0 {
		b = append(b, d.Escape)
		if d.Subcomponent != 0 {
			b = append(b, d.Subcomponent)
			if d.Truncation != 0 {
				b = append(b, d.Truncation)
			}
		}
	}
	return string(b)
}

// Message is a parsed HL7 v2 message. Its text is UTF-8 whatever MSH-18
// said. It is read-only and safe for concurrent reads.
type Message struct {
	// Delims are the message's encoding characters.
	Delims Delimiters
	// Charset is MSH-18 as sent ("" when empty, meaning ASCII).
	Charset string
	segs    []*Segment
}

// Segment is one segment of a Message.
type Segment struct {
	// Name is the segment id, e.g. "PID" or "ZPI".
	Name string
	// Index is the 1-based position of the segment in its message.
	Index  int
	fields []string // fields[0] is the name; for MSH fields[1] is MSH-1
	d      *Delimiters
}

// maxSegments bounds the segments of one message.
const maxSegments = 100000

var bom = []byte{0xEF, 0xBB, 0xBF}

// Parse parses one message. data may start with a UTF-8 byte order mark;
// segments may end with CR, LF or CRLF. The text is decoded from the
// character set MSH-18 names (ASCII, UNICODE UTF-8 or 8859/1); another
// character set is an error that names MSH-18. Every error is a
// *ParseError.
func Parse(data []byte) (*Message, error) {
	data = bytes.TrimPrefix(data, bom)
	d, err := readDelimiters(data)
	if err != nil {
		return nil, err
	}
	// MSH-18 is read from the first segment, in ASCII, before the whole
	// message is decoded.
	first := data
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		first = data[:i]
	}
	msh := splitFields("MSH", string(first), &d)
	charset := ""
	if len(msh.fields) > 18 {
		charset = msh.Field(18).Rep(1).Raw()
	}
	text, perr := decodeCharset(data, charset)
	if perr != nil {
		return nil, perr
	}
	m := &Message{Delims: d, Charset: charset}
	for line := range strings.SplitSeq(normaliseNewlines(text), "\r") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		idx := len(m.segs) + 1
		if idx > maxSegments {
			return nil, &ParseError{Segment: "", SegIndex: idx, Code: CodeSegmentSequence, Msg: "too many segments"}
		}
		name := line
		if i := strings.IndexByte(line, d.Field); i >= 0 {
			name = line[:i]
		}
		if !validSegmentName(name) {
			return nil, &ParseError{SegIndex: idx, Code: CodeSegmentSequence, Msg: "invalid segment id"}
		}
		if idx == 1 && name != "MSH" {
			return nil, &ParseError{Segment: name, SegIndex: 1, Code: CodeSegmentSequence, Msg: "message does not start with MSH"}
		}
		if idx > 1 && name == "MSH" {
			return nil, &ParseError{Segment: name, SegIndex: idx, Code: CodeSegmentSequence, Msg: "second MSH in one message (a batch without BHS?)"}
		}
		s := splitFields(name, line, &m.Delims)
		s.Index = idx
		m.segs = append(m.segs, s)
	}
	if len(m.segs) == 0 {
		return nil, &ParseError{Code: CodeSegmentSequence, Msg: "empty message"}
	}
	return m, nil
}

// readDelimiters reads MSH-1 and MSH-2.
func readDelimiters(data []byte) (Delimiters, *ParseError) {
	if len(bytes.TrimSpace(data)) == 0 {
		return Delimiters{}, &ParseError{Code: CodeSegmentSequence, Msg: "empty message"}
	}
	if !bytes.HasPrefix(data, []byte("MSH")) {
		name := ""
		if len(data) >= 3 && validSegmentName(string(data[:3])) {
			name = string(data[:3])
		}
		return Delimiters{}, &ParseError{Segment: name, SegIndex: 1, Code: CodeSegmentSequence, Msg: "message does not start with MSH"}
	}
	if len(data) < 6 {
		return Delimiters{}, &ParseError{Segment: "MSH", SegIndex: 1, Field: 2, Code: CodeRequiredFieldMissing, Msg: "encoding characters missing"}
	}
	d := Delimiters{Field: data[3]}
	enc := data[4:]
	if i := bytes.IndexByte(enc, d.Field); i >= 0 {
		enc = enc[:i]
	} else {
		return Delimiters{}, &ParseError{Segment: "MSH", SegIndex: 1, Field: 2, Code: CodeRequiredFieldMissing, Msg: "encoding characters not followed by a field separator"}
	}
	// "^~\\&" (a doubled escape character) is a common artifact of
	// messages that went through a string literal; read it as "^~\&".
	if len(enc) == 5 && enc[2] == enc[3] {
		enc = append(append([]byte{}, enc[:3]...), enc[4])
	}
	if len(enc) < 2 || len(enc) > 5 {
		return Delimiters{}, &ParseError{Segment: "MSH", SegIndex: 1, Field: 2, Code: CodeDataType, Msg: "encoding characters must be 2 to 5 characters"}
	}
	seen := map[byte]bool{d.Field: true}
	for _, c := range enc {
		if seen[c] || !isPunct(c) {
			return Delimiters{}, &ParseError{Segment: "MSH", SegIndex: 1, Field: 2, Code: CodeDataType, Msg: "encoding characters must be distinct punctuation"}
		}
		seen[c] = true
	}
	if !isPunct(d.Field) {
		return Delimiters{}, &ParseError{Segment: "MSH", SegIndex: 1, Field: 1, Code: CodeDataType, Msg: "field separator must be punctuation"}
	}
	d.Component, d.Repetition = enc[0], enc[1]
	if len(enc) > 2 {
		d.Escape = enc[2]
	}
	if len(enc) > 3 {
		d.Subcomponent = enc[3]
	}
	if len(enc) > 4 {
		d.Truncation = enc[4]
	}
	return d, nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isPunct(c byte) bool { return c > ' ' && c < 0x7f && !isAlnum(c) }

func validSegmentName(s string) bool {
	if len(s) != 3 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < 3; i++ {
		if !('A' <= s[i] && s[i] <= 'Z' || '0' <= s[i] && s[i] <= '9') {
			return false
		}
	}
	return true
}

// normaliseNewlines turns CRLF and LF into CR.
func normaliseNewlines(s string) string {
	if strings.IndexByte(s, '\n') < 0 {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\r")
	return strings.ReplaceAll(s, "\n", "\r")
}

func splitFields(name, line string, d *Delimiters) *Segment {
	parts := strings.Split(line, string(d.Field))
	if name == "MSH" || name == "FHS" || name == "BHS" {
		// MSH-1 is the field separator itself; MSH-2 follows it.
		fields := make([]string, 0, len(parts)+1)
		fields = append(fields, parts[0], string(d.Field))
		fields = append(fields, parts[1:]...)
		parts = fields
	}
	return &Segment{Name: name, fields: parts, d: d}
}

// Segments returns the message's segments named name, in order; every
// segment when name is "".
func (m *Message) Segments(name string) []*Segment {
	if name == "" {
		return m.segs
	}
	var out []*Segment
	for _, s := range m.segs {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// Segment returns the first segment named name, or nil.
func (m *Message) Segment(name string) *Segment {
	for _, s := range m.segs {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// MSH returns the header segment.
func (m *Message) MSH() *Segment { return m.segs[0] }

// Get returns the decoded value at a terser-style path: "SEG[-rep]-field
// [(rep)][-component[-subcomponent]]", e.g. "PID-5-1", "PID-3(2)-1",
// "OBX[2]-5" (the second OBX). Without a component the first component is
// returned, without a subcomponent the first subcomponent, as HAPI's terser
// does. A missing segment or a bad path gives "".
func (m *Message) Get(path string) string {
	seg, rest, ok := strings.Cut(path, "-")
	if !ok {
		return ""
	}
	occ := 1
	if i := strings.IndexByte(seg, '['); i >= 0 && strings.HasSuffix(seg, "]") {
		n, err := strconv.Atoi(seg[i+1 : len(seg)-1])
		if err != nil || n < 1 {
			return ""
		}
		seg, occ = seg[:i], n
	}
	segs := m.Segments(seg)
	if occ > len(segs) {
		return ""
	}
	parts := strings.Split(rest, "-")
	if len(parts) > 3 {
		return ""
	}
	fieldPart, rep := parts[0], 1
	if i := strings.IndexByte(fieldPart, '('); i >= 0 && strings.HasSuffix(fieldPart, ")") {
		n, err := strconv.Atoi(fieldPart[i+1 : len(fieldPart)-1])
		if err != nil || n < 1 {
			return ""
		}
		fieldPart, rep = fieldPart[:i], n
	}
	nums := []int{0, 1, 1}
	for i, p := range append([]string{fieldPart}, parts[1:]...) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return ""
		}
		nums[i] = n
	}
	return segs[occ-1].Field(nums[0]).Rep(rep).Comp(nums[1]).Sub(nums[2]).String()
}

// NumFields returns the number of the segment's last field.
func (s *Segment) NumFields() int { return len(s.fields) - 1 }

// Field returns field n (1-based). MSH-1 and MSH-2 are returned verbatim:
// they hold the delimiters and are never decoded.
func (s *Segment) Field(n int) Value {
	if n < 1 || n >= len(s.fields) {
		return Value{d: s.d}
	}
	if (s.Name == "MSH" || s.Name == "FHS" || s.Name == "BHS") && n <= 2 {
		return Value{raw: s.fields[n], d: s.d, level: levelSub, verbatim: true}
	}
	return Value{raw: s.fields[n], d: s.d, level: levelField}
}

// Value levels.
const (
	levelField = iota
	levelRep
	levelComp
	levelSub
)

// Value is a field, a repetition, a component or a subcomponent. The zero
// Value is empty.
type Value struct {
	raw      string
	d        *Delimiters
	level    int
	verbatim bool
}

// Raw returns the value's text as it appears in the message, escape
// sequences and delimiters included.
func (v Value) Raw() string { return v.raw }

// IsEmpty reports whether the value is empty (not sent).
func (v Value) IsEmpty() bool { return v.raw == "" }

// IsNull reports whether the value is the HL7 null "" (delete the value).
func (v Value) IsNull() bool { return v.raw == `""` }

// String returns the value with its escape sequences decoded. For a value
// with components or subcomponents, their delimiters are kept. The HL7
// null "" is returned as "".
func (v Value) String() string {
	if v.verbatim {
		return v.raw
	}
	if v.IsNull() || v.d == nil {
		return ""
	}
	return Unescape(v.raw, *v.d)
}

// Reps returns the repetitions of a field (one, possibly empty, for a
// value that is not a field).
func (v Value) Reps() []Value {
	if v.level != levelField || v.d == nil {
		return []Value{v.as(levelRep, v.raw)}
	}
	if v.raw == "" {
		return nil
	}
	parts := strings.Split(v.raw, string(v.d.Repetition))
	out := make([]Value, len(parts))
	for i, p := range parts {
		out[i] = v.as(levelRep, p)
	}
	return out
}

// Rep returns repetition i (1-based) of a field.
func (v Value) Rep(i int) Value {
	if v.level != levelField || v.d == nil {
		if i == 1 {
			return v
		}
		return v.as(levelRep, "")
	}
	return v.as(levelRep, nth(v.raw, v.d.Repetition, i))
}

// Comp returns component i (1-based), of the first repetition of a field.
func (v Value) Comp(i int) Value {
	if v.verbatim || v.d == nil {
		if i == 1 {
			return v
		}
		return Value{}
	}
	if v.level == levelField {
		v = v.Rep(1)
	}
	if v.level >= levelComp {
		if i == 1 {
			return v
		}
		return v.as(levelComp, "")
	}
	return v.as(levelComp, nth(v.raw, v.d.Component, i))
}

// Sub returns subcomponent i (1-based), of the first component.
func (v Value) Sub(i int) Value {
	if v.verbatim || v.d == nil {
		if i == 1 {
			return v
		}
		return Value{}
	}
	if v.level < levelComp {
		v = v.Comp(1)
	}
	if v.level == levelSub || v.d.Subcomponent == 0 {
		if i == 1 {
			return v.as(levelSub, v.raw)
		}
		return v.as(levelSub, "")
	}
	return v.as(levelSub, nth(v.raw, v.d.Subcomponent, i))
}

func (v Value) as(level int, raw string) Value {
	return Value{raw: raw, d: v.d, level: level}
}

// nth returns the i-th (1-based) part of s split at sep.
func nth(s string, sep byte, i int) string {
	for n := 1; ; n++ {
		j := strings.IndexByte(s, sep)
		if n == i {
			if j < 0 {
				return s
			}
			return s[:j]
		}
		if j < 0 {
			return ""
		}
		s = s[j+1:]
	}
}
