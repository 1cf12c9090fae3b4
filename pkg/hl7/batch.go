package hl7

import (
	"bytes"
	"strings"
)

// Batch is the content of an HL7 batch or file (FHS/BHS ... BTS/FTS).
type Batch struct {
	// Header is the FHS or BHS segment line that opened it (nil when the
	// input was bare messages). It holds no patient data but is kept raw.
	Header []byte
	// Messages are the messages, each as its own raw text (segments ended
	// by CR), in order.
	Messages [][]byte
}

// IsBatch reports whether data (after an optional BOM) starts with an FHS or
// BHS segment.
func IsBatch(data []byte) bool {
	data = bytes.TrimPrefix(data, bom)
	return bytes.HasPrefix(data, []byte("FHS")) || bytes.HasPrefix(data, []byte("BHS"))
}

// SplitBatch splits a batch file (FHS, BHS ... BTS, FTS, one or more
// batches) or a run of bare messages into its messages. It checks the
// wrappers' order: FHS only first, BHS only at the start of a batch (not
// inside an open one), BTS closing an open batch, nothing after FTS, and
// every other segment inside a message. As senders do, a file may hold
// messages without BHS, and a final BTS or FTS may be missing. Errors are *ParseError values whose SegIndex is the position in
// the whole input. The messages themselves are not parsed.
func SplitBatch(data []byte) (*Batch, error) {
	data = bytes.TrimPrefix(data, bom)
	text := normaliseNewlines(string(data))
	var (
		out                       Batch
		cur                       []string
		inFile, inBatch, fileDone bool
		idx                       int
	)
	flush := func() {
		if len(cur) > 0 {
			out.Messages = append(out.Messages, []byte(strings.Join(cur, "\r")+"\r"))
			cur = nil
		}
	}
	seqErr := func(name, msg string) error {
		return &ParseError{Segment: name, SegIndex: idx, Code: CodeSegmentSequence, Msg: msg}
	}
	for line := range strings.SplitSeq(text, "\r") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		idx++
		name := line
		if len(name) > 3 {
			name = name[:3]
		}
		if !validSegmentName(name) {
			return nil, &ParseError{SegIndex: idx, Code: CodeSegmentSequence, Msg: "invalid segment id"}
		}
		if fileDone {
			return nil, seqErr(name, "segment after FTS")
		}
		switch name {
		case "FHS":
			if idx != 1 {
				return nil, seqErr(name, "FHS not at the start of the file")
			}
			inFile = true
			out.Header = []byte(line)
		case "BHS":
			if inBatch {
				return nil, seqErr(name, "BHS inside an open batch (BTS missing)")
			}
			if len(out.Messages) > 0 && !inFile || len(cur) > 0 {
				return nil, seqErr(name, "BHS after messages outside a batch")
			}
			inBatch = true
			if out.Header == nil {
				out.Header = []byte(line)
			}
		case "BTS":
			if !inBatch && !inFile {
				return nil, seqErr(name, "BTS without BHS")
			}
			flush()
			inBatch = false
		case "FTS":
			if inBatch {
				return nil, seqErr(name, "FTS inside an open batch (BTS missing)")
			}
			flush()
			fileDone = true
		case "MSH":
			flush()
			cur = []string{line}
		default:
			if len(cur) == 0 {
				return nil, seqErr(name, "segment outside a message (MSH missing)")
			}
			cur = append(cur, line)
		}
	}
	// A missing BTS or FTS at the very end is tolerated: senders often
	// leave them out, and nothing follows that could be misread.
	flush()
	return &out, nil
}
