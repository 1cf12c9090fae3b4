package app

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// contentHash is the SHA-256 of the facts of o that decide its
// transitions: kind, HL7 trigger, status, an appointment's start, end and
// service type, an encounter's class and discharge disposition, a
// patient's contact hash. It tells a resend (the same facts again) from
// new content that arrives under a version marker already seen, e.g. an
// interface engine that reuses an MSH-10 and MSH-7 for a real
// reschedule. Keys, source and version are not part of it: they say
// where the facts came from, not what they are. It is only stored sealed
// (the facts are PHI).
func (o Observation) contentHash() string {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	parts := []string{"facts v1", o.Kind, o.Trigger, o.Status, ts(o.Start), ts(o.End), o.ServiceType,
		strconv.FormatBool(o.Inpatient), strconv.FormatBool(o.DischargeDisposition), o.ContactHash}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:16])
}
