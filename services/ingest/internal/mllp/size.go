package mllp

import (
	"context"
	"fmt"

	"github.com/carenotify/carenotify/pkg/hl7"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/hl7map"
)

// ReasonMessageTooLarge is the reject reason of a frame over its source's
// max_body_bytes (but within the frame cap).
const ReasonMessageTooLarge = "message_too_large"

// tooLarge answers a frame over its source's size limit (Options.MaxMessageBytes)
// with AR/CR and an ERR naming the limit; refused is false when the frame
// is within it. The frame is not processed and not kept: like an HTTP
// 413, the sender has to split or shorten it.
func (s *Server) tooLarge(ctx context.Context, frame []byte) (ack []byte, refused bool) {
	if s.o.MaxMessageBytes == nil {
		return nil, false
	}
	limit := s.o.MaxMessageBytes(s.o.Source)
	if limit <= 0 || int64(len(frame)) <= limit {
		return nil, false
	}
	msg, perr := hl7.Parse(frame)
	if perr != nil || hl7.IsBatch(frame) {
		msg = nil // the ACK then has no MSA-2
	}
	code := ackCode(msg, &app.Error{Kind: app.KindInvalid, Reason: ReasonMessageTooLarge})
	typ := "unknown"
	if msg != nil {
		typ = typeLabel(msg.Type().String(), hl7map.Supported(msg.Type()))
	}
	s.o.Metrics.message(s.o.Source.Name, typ, code)
	s.handled(ctx, typ, app.HL7Result{}, ReasonMessageTooLarge)
	s.o.Logger.WarnContext(ctx, "hl7 message over the source's size limit", "source", s.o.Source.Name, "tenant", s.o.Source.Tenant,
		"bytes", len(frame), "maxBodyBytes", limit, "ack", code)
	if !wantsAck(msg, code) {
		return nil, true
	}
	text := fmt.Sprintf("message of %d bytes is larger than this sender's limit of %d bytes (max_body_bytes)", len(frame), limit)
	return hl7.BuildACK(msg, code, []*hl7.ParseError{{Code: hl7.CodeInternal, Msg: text}}, s.o.Now()), true
}
