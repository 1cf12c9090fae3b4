package mllp

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/carenotify/carenotify/pkg/hl7"
)

// errThrottled makes ackCode choose AE/CE: retry later.
var errThrottled = errors.New("throttled")

// throttle applies the source's rate limit to one frame. When the budget
// is spent (or cannot be checked: fail closed) the frame is not processed
// and the answer is an AE (CE in enhanced mode) with ERR code 207 saying
// so; refused is then true.
func (s *Server) throttle(ctx context.Context, frame []byte) (ack []byte, refused bool) {
	if s.o.Throttle == nil {
		return nil, false
	}
	ok, wait, err := s.o.Throttle(ctx, s.o.Source)
	if err == nil && ok {
		return nil, false
	}
	reason, text := "rate_limited", fmt.Sprintf("rate limit of this sender exceeded; retry after %d s", max(1, int(math.Ceil(wait.Seconds()))))
	if err != nil {
		reason, text = "rate_limiter_unavailable", "rate limit cannot be checked; retry later"
		s.o.Logger.ErrorContext(ctx, "rate limiter unavailable", "source", s.o.Source.Name, "err", err)
	}
	msg, perr := hl7.Parse(frame)
	if perr != nil || hl7.IsBatch(frame) {
		msg = nil // the ACK then has no MSA-2; the sender retries the frame
	}
	code := ackCode(msg, errThrottled)
	s.o.Metrics.message(s.o.Source.Name, "unknown", code)
	s.o.Logger.WarnContext(ctx, "hl7 message throttled", "source", s.o.Source.Name, "tenant", s.o.Source.Tenant, "reason", reason, "ack", code)
	if !wantsAck(msg, code) {
		return nil, true
	}
	return hl7.BuildACK(msg, code, []*hl7.ParseError{{Code: hl7.CodeInternal, Msg: text}}, s.o.Now()), true
}
