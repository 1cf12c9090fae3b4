package natsbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
)

// Dead-letter headers this service adds beside pkg/bus's; both PHI-free.
const (
	// HeaderInput is the input path (app.InputHL7, ...).
	HeaderInput = "Cn-Input"
	// HeaderPushType is a FHIR push's URL resource type.
	HeaderPushType = "Cn-Push-Type"
)

// maxListBatch bounds one fetch while listing.
const maxListBatch = 256

// DeadLetters implements app.DeadLetterStore on the EHR_DEAD stream.
type DeadLetters struct {
	js      jetstream.JetStream
	sealer  *envelope.Sealer
	timeout time.Duration
}

var _ app.DeadLetterStore = (*DeadLetters)(nil)

// NewDeadLetters returns a reader of EHR_DEAD that opens bodies with
// sealer; each call is bounded by timeout.
func NewDeadLetters(js jetstream.JetStream, sealer *envelope.Sealer, timeout time.Duration) *DeadLetters {
	return &DeadLetters{js: js, sealer: sealer, timeout: timeout}
}

// GetDeadLetter reads and opens the letter at seq.
func (d *DeadLetters) GetDeadLetter(ctx context.Context, seq uint64) (app.StoredDeadLetter, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	stream, err := d.js.Stream(ctx, bus.StreamEHRDead)
	if err != nil {
		return app.StoredDeadLetter{}, fmt.Errorf("dead-letter stream: %w", err)
	}
	raw, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return app.StoredDeadLetter{}, fmt.Errorf("get dead letter %d: %w", seq, app.ErrDeadLetterNotFound)
	}
	if err != nil {
		return app.StoredDeadLetter{}, fmt.Errorf("get dead letter %d: %w", seq, err)
	}
	info := infoOf(seq, raw.Time, raw.Subject, raw.Header)
	body, err := d.sealer.Open(ctx, raw.Data, envelope.Binding{Tenant: info.Tenant, Kind: envelope.KindEHRDead, ID: raw.Header.Get(nats.MsgIdHdr)})
	if err != nil {
		return app.StoredDeadLetter{}, fmt.Errorf("open dead letter %d: %w", seq, err)
	}
	return app.StoredDeadLetter{DeadLetterInfo: info, Body: body}, nil
}

// ListDeadLetters returns up to limit letters of source ("" for all),
// oldest first, reading headers only.
func (d *DeadLetters) ListDeadLetters(ctx context.Context, source string, limit int) ([]app.DeadLetterInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	filter := "dead.ehr.>"
	if source != "" {
		if _, err := bus.Subject(source); err != nil || strings.ContainsAny(source, "*>") {
			return nil, errors.New("list dead letters: invalid source name")
		}
		filter = "dead.ehr.*." + source
	}
	stream, err := d.js.Stream(ctx, bus.StreamEHRDead)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream: %w", err)
	}
	if si, err := stream.Info(ctx); err != nil {
		return nil, fmt.Errorf("dead-letter stream: %w", err)
	} else if si.State.Msgs == 0 {
		return []app.DeadLetterInfo{}, nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, HeadersOnly: true})
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	out := []app.DeadLetterInfo{}
	for len(out) < limit {
		batch, err := cons.Fetch(min(limit-len(out), maxListBatch), jetstream.FetchMaxWait(250*time.Millisecond))
		if err != nil {
			return nil, fmt.Errorf("list dead letters: %w", err)
		}
		n, pending := 0, uint64(1)
		for m := range batch.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("list dead letters: %w", err)
			}
			n++
			pending = meta.NumPending
			out = append(out, infoOf(meta.Sequence.Stream, meta.Timestamp, m.Subject(), m.Headers()))
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("list dead letters: %w", err)
		}
		if n == 0 || pending == 0 {
			break
		}
	}
	return out, nil
}

// infoOf reads what a letter's subject and headers say of it.
func infoOf(seq uint64, t time.Time, subject string, h nats.Header) app.DeadLetterInfo {
	info := app.DeadLetterInfo{Seq: seq, Time: t.UTC(), Tenant: h.Get(bus.HeaderTenant), Source: h.Get(bus.HeaderSource),
		Reason: h.Get(bus.HeaderReason), Input: h.Get(HeaderInput), PushType: h.Get(HeaderPushType)}
	if tokens := strings.Split(subject, "."); len(tokens) == 4 {
		if info.Tenant == "" {
			info.Tenant = tokens[2]
		}
		if info.Source == "" {
			info.Source = tokens[3]
		}
	}
	return info
}
