package mllp

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/carenotify/carenotify/services/ingest/internal/app"
)

// Replay runs one HL7 v2 message (or batch), without MLLP framing, through
// the same path a connection from src takes, and returns the
// acknowledgement the sender would have received (nil when the message
// asks for none) and the number of events stored. It serves dead-letter
// replay; nothing is counted in the MLLP metrics.
func Replay(ctx context.Context, a Ingester, src app.Source, frame []byte, logger *slog.Logger) (ack []byte, events int) {
	c := &countingIngester{next: a}
	s := New(Options{App: c, Source: src, Logger: logger, Now: time.Now})
	ack = s.handle(ctx, frame)
	return ack, int(c.events.Load())
}

// countingIngester counts the events its Ingester stores.
type countingIngester struct {
	next   Ingester
	events atomic.Int64
}

func (c *countingIngester) IngestHL7(ctx context.Context, src app.Source, raw []byte) (app.HL7Result, error) {
	res, err := c.next.IngestHL7(ctx, src, raw)
	c.events.Add(int64(len(res.Events)))
	return res, err
}

func (c *countingIngester) IngestHL7Batch(ctx context.Context, src app.Source, raw []byte) (app.HL7BatchResult, error) {
	res, err := c.next.IngestHL7Batch(ctx, src, raw)
	for _, r := range res.Results {
		c.events.Add(int64(len(r.Events)))
	}
	return res, err
}
