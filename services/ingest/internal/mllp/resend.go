package mllp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"

	"github.com/carenotify/carenotify/pkg/hl7"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/hl7map"
	"github.com/carenotify/carenotify/services/ingest/internal/metrics"
)

// ResendKey names an HL7 v2 message by who sent it and its control id:
// HL7 v2.5.1 section 2.10.1 makes MSH-10 unique per sending system, so
// a message that arrives again with the same key is a resend (the sender
// lost or never got its acknowledgement). None of its fields is PHI, but
// stores keep only a keyed hash of it.
type ResendKey struct {
	// Tenant and Source are the configured sender.
	Tenant, Source string
	// App and Facility are MSH-3 and MSH-4 as sent.
	App, Facility string
	// ControlID is MSH-10.
	ControlID string
}

// StoredACK is what is kept of the first answer to a message.
type StoredACK struct {
	// Digest is the SHA-256 of the message without MSH-7 (see
	// messageDigest): a resend must carry the same content, else the
	// sender reused a control id for another message.
	Digest [sha256.Size]byte
	// Code is the acknowledgment code sent ("none" when MSH-15 asked for
	// no acknowledgement).
	Code string
	// ACK is the acknowledgement exactly as sent; nil when none was.
	ACK []byte
}

// AckStore keeps the first acknowledgement of every message per
// ResendKey, so that a resend is answered with the same bytes without
// being processed again. Implementations must let one caller at a time
// process a key, across replicas.
type AckStore interface {
	// Claim returns the acknowledgement stored for k, or, when there is
	// none, an AckClaim: the exclusive right to process the message until
	// it is stored or released. While another caller holds the claim,
	// Claim waits for its acknowledgement; when that takes too long it
	// returns an error wrapping ErrAckBusy.
	Claim(ctx context.Context, k ResendKey) (*StoredACK, AckClaim, error)
}

// AckClaim is the right to process one message, from AckStore.Claim.
type AckClaim interface {
	// Store keeps a as the message's acknowledgement (the first stored
	// wins) and ends the claim.
	Store(ctx context.Context, a StoredACK) error
	// Release ends the claim without storing anything, so that the next
	// resend is processed again.
	Release(ctx context.Context)
}

// ErrAckBusy means another connection (or replica) has been processing
// the same message for longer than the store waits.
var ErrAckBusy = errors.New("the same message is being processed")

// InputMetrics counts messages per source and type (internal/metrics).
type InputMetrics interface {
	// Handled counts one message answered.
	Handled(in metrics.Input)
	// Duplicate counts one message that was not processed again. input
	// is app.InputHL7, typ a bounded message type label, reason a fixed
	// code.
	Duplicate(source, input, typ, reason string)
}

// DuplicateResent is the reason of a resend answered with its stored
// acknowledgement.
const DuplicateResent = "resent_control_id"

// resendKey reads the key and digest of a single message; false when it
// does not parse or has no MSH-10 (it is then processed every time, and
// rejected by the app when it does not parse).
func resendKey(src app.Source, frame []byte) (*hl7.Message, ResendKey, [sha256.Size]byte, bool) {
	m, err := hl7.Parse(frame)
	if err != nil || m.ControlID() == "" {
		return nil, ResendKey{}, [sha256.Size]byte{}, false
	}
	h := m.MSH()
	k := ResendKey{Tenant: src.Tenant, Source: src.Name, App: h.Field(3).Raw(), Facility: h.Field(4).Raw(), ControlID: m.ControlID()}
	return m, k, messageDigest(frame, m), true
}

// messageDigest hashes the message with MSH-7 left out, since some
// interface engines stamp a new message time on a resend; everything else
// (the rest of MSH and every other segment) must be the same. Segment
// ends are normalised to CR.
func messageDigest(frame []byte, m *hl7.Message) [sha256.Size]byte {
	text := strings.ReplaceAll(strings.ReplaceAll(string(bytes.TrimPrefix(frame, []byte{0xEF, 0xBB, 0xBF})), "\r\n", "\r"), "\n", "\r")
	first, rest, _ := strings.Cut(text, "\r")
	fields := strings.Split(first, string(m.Delims.Field))
	// fields[0] is "MSH" and fields[1] MSH-2, so MSH-n is fields[n-1].
	if len(fields) > 6 {
		fields[6] = ""
	}
	d := sha256.New()
	d.Write([]byte(strings.Join(fields, string(m.Delims.Field))))
	d.Write([]byte{'\r'})
	d.Write([]byte(strings.TrimRight(rest, "\r")))
	var out [sha256.Size]byte
	copy(out[:], d.Sum(nil))
	return out
}

// handleMessage answers one (non-batch) message, from the AckStore when
// it is a resend.
func (s *Server) handleMessage(ctx context.Context, frame []byte) []byte {
	if s.o.Acks == nil {
		ack, _, _ := s.process(ctx, frame)
		return ack
	}
	m, k, digest, ok := resendKey(s.o.Source, frame)
	if !ok {
		ack, _, _ := s.process(ctx, frame)
		return ack
	}
	stored, claim, err := s.o.Acks.Claim(ctx, k)
	switch {
	case errors.Is(err, ErrAckBusy):
		ack, _ := s.answer(ctx, app.HL7Result{Message: m, Type: m.Type().String(), Supported: hl7map.Supported(m.Type())}, &app.Error{
			Kind: app.KindUnavailable, Reason: "resend_busy", Code: "transient", Err: err,
			Diagnostics: "the same message is being processed; retry later",
			HL7:         []*hl7.ParseError{{Code: hl7.CodeInternal, Msg: "the same message is being processed; retry later"}},
		})
		return ack
	case err != nil:
		// Without the store the message is processed as if new; the
		// last-seen state and the events' deduplication ids still keep
		// a resend from giving a second event.
		s.o.Logger.WarnContext(ctx, "hl7 ack store unavailable", "source", s.o.Source.Name, "err", err)
		ack, _, _ := s.process(ctx, frame)
		return ack
	case stored != nil && stored.Digest == digest:
		typ := typeLabel(m.Type().String(), hl7map.Supported(m.Type()))
		s.o.Metrics.message(s.o.Source.Name, typ, stored.Code)
		if s.o.Inputs != nil {
			s.o.Inputs.Duplicate(s.o.Source.Name, app.InputHL7, typ, DuplicateResent)
			s.o.Inputs.Handled(metrics.Input{Source: s.o.Source.Name, Input: app.InputHL7, Type: typ, Elapsed: sinceReceived(ctx)})
		}
		s.o.Logger.InfoContext(ctx, "hl7 message resent", "source", s.o.Source.Name, "tenant", s.o.Source.Tenant,
			"type", typ, "ack", stored.Code)
		return stored.ACK
	case stored != nil:
		// The same sender and control id for other content: a reused
		// control id, processed as a new message (the first
		// acknowledgement stays stored).
		s.o.Logger.WarnContext(ctx, "hl7 control id reused for other content", "source", s.o.Source.Name,
			"type", typeLabel(m.Type().String(), hl7map.Supported(m.Type())))
		ack, _, _ := s.process(ctx, frame)
		return ack
	}
	ack, code, keep := s.process(ctx, frame)
	// Stored only when the outcome is final: the events are stored (the
	// PubAck came before the answer) or the message was kept on EHR_DEAD.
	// A "retry later" is not kept, so the resend is processed again.
	if !keep {
		claim.Release(context.WithoutCancel(ctx))
		return ack
	}
	if err := claim.Store(context.WithoutCancel(ctx), StoredACK{Digest: digest, Code: code, ACK: ack}); err != nil {
		s.o.Logger.WarnContext(ctx, "hl7 ack not stored", "source", s.o.Source.Name, "err", err)
	}
	return ack
}

// final reports whether err is an outcome a retry cannot change: nil
// (stored) or a rejection kept on EHR_DEAD.
func final(err error) bool {
	if err == nil {
		return true
	}
	var ae *app.Error
	return errors.As(err, &ae) && ae.Kind != app.KindUnavailable
}
