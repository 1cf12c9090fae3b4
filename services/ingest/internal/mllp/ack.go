package mllp

import (
	"errors"
	"strconv"
	"time"

	"github.com/carenotify/carenotify/pkg/hl7"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
)

// ackCode maps the app's outcome to an acknowledgment code: accepted →
// AA; unparsable → AR; parsed but unusable → AE; storage down or an
// internal error → AE with ERR code 207, so the sender retries. In
// enhanced mode (MSH-15 set) the commit codes CA, CR and CE are used.
func ackCode(msg *hl7.Message, err error) string {
	enhanced := msg != nil && msg.AcceptAckType() != ""
	code := hl7.AckAccept
	if err != nil {
		code = hl7.AckError
		var ae *app.Error
		if errors.As(err, &ae) && ae.Kind == app.KindInvalid {
			code = hl7.AckReject
		}
	}
	if enhanced {
		code = map[string]string{hl7.AckAccept: hl7.AckCommitAccept, hl7.AckError: hl7.AckCommitError, hl7.AckReject: hl7.AckCommitReject}[code]
	}
	return code
}

// ackErrors returns the ERR segments' content for err.
func ackErrors(err error) []*hl7.ParseError {
	if err == nil {
		return nil
	}
	var ae *app.Error
	if errors.As(err, &ae) && len(ae.HL7) > 0 {
		return ae.HL7
	}
	return []*hl7.ParseError{{Code: hl7.CodeInternal, Msg: "internal error; retry later"}}
}

// wantsAck applies MSH-15 (accept acknowledgment type, table 0155): NE
// never, ER only on errors, SU only on success, AL (and original mode)
// always.
func wantsAck(msg *hl7.Message, code string) bool {
	if msg == nil {
		return true
	}
	ok := code == hl7.AckAccept || code == hl7.AckCommitAccept
	switch msg.AcceptAckType() {
	case "NE":
		return false
	case "ER":
		return !ok
	case "SU":
		return ok
	}
	return true
}

// batchACK wraps acknowledgements in BHS ... BTS (HL7 v2.5.1 section
// 2.10.3.3): the answer to a batch.
func batchACK(acks [][]byte, now time.Time) []byte {
	out := []byte("BHS|^~\\&|||||" + now.UTC().Format("20060102150405") + "+0000\r")
	for _, a := range acks {
		out = append(out, a...)
	}
	return append(out, []byte("BTS|"+strconv.Itoa(len(acks))+"\r")...)
}
