package hl7

import (
	"strings"
	"unicode/utf8"
)

// decodeCharset turns data, encoded in the MSH-18 character set charset,
// into UTF-8 text.
func decodeCharset(data []byte, charset string) (string, *ParseError) {
	switch strings.ToUpper(strings.TrimSpace(charset)) {
	case "", "ASCII":
		// Senders that claim ASCII often send UTF-8 or Latin-1: keep valid
		// UTF-8, read anything else as ISO 8859-1.
		if utf8.Valid(data) {
			return string(data), nil
		}
		return latin1ToUTF8(data), nil
	case "UNICODE UTF-8", "UTF-8", "UTF8":
		if !utf8.Valid(data) {
			return "", &ParseError{Segment: "MSH", SegIndex: 1, Field: 18, Code: CodeDataType, Msg: "message is not valid UTF-8 as MSH-18 declares"}
		}
		return string(data), nil
	case "8859/1":
		return latin1ToUTF8(data), nil
	}
	return "", &ParseError{Segment: "MSH", SegIndex: 1, Field: 18, Code: CodeTableValueNotFound,
		Msg: "unsupported character set (supported: ASCII, UNICODE UTF-8, 8859/1)"}
}

// latin1ToUTF8 decodes ISO 8859-1 bytes.
func latin1ToUTF8(b []byte) string {
	var s strings.Builder
	s.Grow(len(b) + len(b)/8)
	for _, c := range b {
		s.WriteRune(rune(c))
	}
	return s.String()
}
