package hl7

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Acknowledgment codes (HL7 table 0008).
const (
	AckAccept       = "AA" // Original mode: accepted.
	AckError        = "AE" // Original mode: error, may be retried.
	AckReject       = "AR" // Original mode: rejected.
	AckCommitAccept = "CA" // Enhanced mode: committed.
	AckCommitError  = "CE" // Enhanced mode: commit error.
	AckCommitReject = "CR" // Enhanced mode: commit reject.
)

// BuildACK builds the acknowledgement of msg with acknowledgment code code
// (AA, AE, AR, CA, CE or CR) and one ERR segment per error, ended by CR.
// The ACK uses msg's delimiters and version, swaps sending and receiving
// application and facility, answers MSH-9 with ACK^<trigger>^ACK and
// carries msg's MSH-10 in MSA-2. msg may be nil (input without a usable
// MSH): the ACK then has a minimal MSH (|^~\&, version 2.5) and an empty
// MSA-2. ERR-2 (location, ERL: segment^sequence^field^repetition^component),
// ERR-3 (code^text^HL70357) and ERR-4 (severity E) follow v2.5; for earlier
// versions ERR-1 (ELD) is written too, and MSA-3 holds the first error's
// text. now gives MSH-7 and, with msg's MSH-10, the ACK's own control id.
func BuildACK(msg *Message, code string, errs []*ParseError, now time.Time) []byte {
	d := DefaultDelimiters
	version, trigger, controlID, processing := "2.5", "", "", "P"
	var sendApp, sendFac, recvApp, recvFac, charset string
	if msg != nil {
		d = msg.Delims
		h := msg.MSH()
		sendApp, sendFac = h.Field(3).Raw(), h.Field(4).Raw()
		recvApp, recvFac = h.Field(5).Raw(), h.Field(6).Raw()
		trigger = h.Field(9).Comp(2).Raw()
		controlID = h.Field(10).Raw()
		if p := h.Field(11).Raw(); p != "" {
			processing = p
		}
		if v := h.Field(12).Raw(); v != "" {
			version = v
		}
		// MSH-18 is echoed only when it is a supported character set (the
		// ACK itself is ASCII).
		if cs := h.Field(18).Rep(1).Raw(); cs != "" {
			if _, err := decodeCharset(nil, cs); err == nil {
				charset = cs
			}
		}
	}
	f, c := string(d.Field), string(d.Component)
	sum := sha256.Sum256([]byte(controlID + "|" + strconv.FormatInt(now.UnixNano(), 10)))
	ackID := "ACK" + hex.EncodeToString(sum[:])[:17]

	var b strings.Builder
	msh := []string{"MSH", d.encoding(), recvApp, recvFac, sendApp, sendFac,
		now.UTC().Format("20060102150405.0000") + "+0000", "",
		"ACK" + c + trigger + c + "ACK", ackID, processing, version}
	if charset != "" {
		msh = append(msh, "", "", "", "", "", charset)
	}
	b.WriteString(strings.Join(msh, f) + "\r")
	msa := []string{"MSA", code, controlID}
	if len(errs) > 0 && errs[0] != nil {
		msa = append(msa, Escape(truncate(errs[0].Msg, 80), d))
	}
	b.WriteString(strings.Join(msa, f) + "\r")
	v25 := versionAtLeast(version, 2, 5)
	for _, e := range errs {
		if e == nil {
			continue
		}
		b.WriteString(errSegment(e, d, v25) + "\r")
	}
	return []byte(b.String())
}

func errSegment(e *ParseError, d Delimiters, v25 bool) string {
	f, c, s := string(d.Field), string(d.Component), string(d.Subcomponent)
	if d.Subcomponent == 0 {
		s = c
	}
	code := e.Code
	if code == "" {
		code = CodeInternal
	}
	text := Escape(e.Msg, d)
	var loc []string
	if e.Segment != "" {
		loc = append(loc, e.Segment, itoa(e.SegIndex))
		if e.Field > 0 {
			loc = append(loc, itoa(e.Field), "1")
			if e.Component > 0 {
				loc = append(loc, itoa(e.Component))
			}
		}
	}
	erl := strings.Join(loc, c)
	eld := ""
	if !v25 {
		eld = strings.Join([]string{e.Segment, itoa(e.SegIndex), itoa(e.Field), code + s + text + s + "HL70357"}, c)
	}
	return strings.Join([]string{"ERR", eld, erl, code + c + text + c + "HL70357", "E"}, f)
}

func itoa(n int) string {
	if n <= 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// versionAtLeast reports whether an HL7 version like "2.5.1" is at least
// major.minor.
func versionAtLeast(v string, major, minor int) bool {
	ma, rest, _ := strings.Cut(v, ".")
	mi, _, _ := strings.Cut(rest, ".")
	a, err1 := strconv.Atoi(ma)
	b, err2 := strconv.Atoi(mi)
	if err1 != nil || err2 != nil {
		return true
	}
	return a > major || a == major && b >= minor
}
