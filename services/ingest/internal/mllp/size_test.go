package mllp_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/hl7/hl7test"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/mllp"
)

// TestSourceSizeLimit gives the source a max_body_bytes below the frame
// cap: a corpus SIU^S12 over it gets AR (CR in enhanced mode) with an
// ERR naming the limit, is neither processed nor dead-lettered, and a
// message within it is accepted.
func TestSourceSizeLimit(t *testing.T) {
	const limit = 300
	e := start(t, func(_ *env, o *mllp.Options) {
		o.MaxMessageBytes = func(src app.Source) int64 {
			if src.Name == "demo" {
				return limit
			}
			return 0
		}
	})
	conn := hl7test.Dial(t, e.addr)
	siu := hl7test.Read(t, "SIU_S12/msconv-SIU-S12-01.hl7")
	if len(siu) <= limit {
		t.Fatalf("corpus message of %d bytes is not over the test limit", len(siu))
	}
	raw := conn.Send(t, siu)
	ack := parseACK(t, raw)
	if got := ack.Get("MSA-1") + " " + ack.Get("MSA-2") + " " + ack.Get("ERR-3-1"); got != "AR MSG00012 207" {
		t.Errorf("over the limit: ACK %q", raw)
	}
	if !strings.Contains(string(raw), "limit of 300 bytes (max_body_bytes)") {
		t.Errorf("ACK does not name the limit: %q", raw)
	}
	enh := append(bytes.TrimRight(bytes.ReplaceAll(siu, []byte("\n"), []byte("\r")), "\r"), []byte("\r")...)
	enh = replaceField(enh, 15, "AL")
	if got := parseACK(t, conn.Send(t, enh)).Get("MSA-1"); got != "CR" {
		t.Errorf("enhanced mode over the limit: ACK %q, want CR", got)
	}
	small := []byte("MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X3|P|2.5\rPID|1||MRN77^^^H||Q^R\r")
	if got := parseACK(t, conn.Send(t, small)).Get("MSA-1"); got != "AA" {
		t.Errorf("within the limit: ACK %q, want AA", got)
	}
	if n := len(subjectCounts(t, e.js, bus.StreamEHREvents, "ehr.>")); n != 0 {
		t.Errorf("%d event subjects, want none", n)
	}
	if n := len(subjectCounts(t, e.js, bus.StreamEHRDead, "dead.ehr.>")); n != 0 {
		t.Errorf("%d dead-letter subjects, want none", n)
	}
	if text := gatherText(t, e.reg); !strings.Contains(text, `reason="message_too_large"`) {
		t.Errorf("metrics lack the rejection:\n%s", text)
	}
}
