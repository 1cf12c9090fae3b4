package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carenotify/carenotify/pkg/bus"
)

// DefaultCheckpointEvery is how many records a Writer appends to a chain
// between two signed checkpoints, unless [WithCheckpointEvery] says
// otherwise.
const DefaultCheckpointEvery = 1000

// maxAttempts bounds how often Record retries when another writer extended
// the chain first.
const maxAttempts = 20

// Checkpoint reasons.
const (
	reasonInterval = "interval"
	reasonClose    = "close"
)

// ErrClosed is returned by Record after Close.
var ErrClosed = errors.New("audit writer closed")

// ErrChainHead is returned when the last message of a chain is not an
// audit record, so the chain cannot be continued without forking it.
// Run Verify on the chain.
var ErrChainHead = errors.New("audit chain head is not an audit record")

// errDuplicate is a publish acknowledged as a duplicate: a message with the
// same id (tenant.service.seq) is in the stream's duplicate window.
var errDuplicate = errors.New("duplicate message id")

// Option configures a Writer.
type Option func(*Writer)

// WithSigningKey makes the Writer append signed checkpoints. Without it a
// Writer writes no checkpoints.
func WithSigningKey(key ed25519.PrivateKey) Option {
	return func(w *Writer) { w.signer = key }
}

// WithCheckpointEvery sets how many records the Writer appends to a chain
// between checkpoints (default [DefaultCheckpointEvery]). n < 1 is
// ignored.
func WithCheckpointEvery(n int) Option {
	return func(w *Writer) {
		if n >= 1 {
			w.every = n
		}
	}
}

// Writer appends records to the chains of one service, one chain per
// tenant. It is safe for concurrent use, and several Writers (replicas of a
// service) may write the same chain: every append is conditional on the
// chain's last stream sequence, so the chain never forks.
type Writer struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	service string
	key     []byte
	signer  ed25519.PrivateKey
	every   int
	now     func() time.Time

	mu     sync.Mutex
	chains map[string]*chain
	closed bool
}

// chain is a Writer's view of one chain's head.
type chain struct {
	mu        sync.Mutex
	tenant    string
	subject   string
	loaded    bool
	seq       uint64 // Seq of the head record, 0 for an empty chain
	hash      string // Hash of the head record
	streamSeq uint64 // stream sequence of the head record
	since     int    // records this Writer appended since its last checkpoint
}

// NewWriter returns a Writer for service that hashes patient ids with
// pseudonymKey. The AUDIT stream must exist ([bus.Audit],
// [bus.EnsureStreams]).
func NewWriter(ctx context.Context, js jetstream.JetStream, service string, pseudonymKey []byte, opts ...Option) (*Writer, error) {
	if !bus.ValidToken(service) {
		return nil, fmt.Errorf("%w: service", ErrInvalidEntry)
	}
	if len(pseudonymKey) < PseudonymKeySize {
		return nil, fmt.Errorf("audit writer: pseudonym key shorter than %d bytes", PseudonymKeySize)
	}
	s, err := js.Stream(ctx, bus.StreamAudit)
	if err != nil {
		return nil, fmt.Errorf("audit stream: %w", err)
	}
	w := &Writer{
		js:      js,
		stream:  s,
		service: service,
		key:     append([]byte(nil), pseudonymKey...),
		every:   DefaultCheckpointEvery,
		now:     time.Now,
		chains:  make(map[string]*chain),
	}
	for _, o := range opts {
		o(w)
	}
	return w, nil
}

// Record appends e to the chain of e.Tenant and this service and returns
// once JetStream has acknowledged it. On error nothing was stored (or, if
// the acknowledgement was lost, the record is found on the chain and Record
// reports success).
func (w *Writer) Record(ctx context.Context, e Entry) error {
	if err := e.validate(); err != nil {
		return err
	}
	t := e.Time
	if t.IsZero() {
		t = w.now()
	}
	r := Record{
		Time:    t.UTC().Round(0),
		Tenant:  e.Tenant,
		Service: w.service,
		Actor:   e.Actor,
		Action:  e.Action,
		Object:  e.Object,
		Purpose: e.Purpose,
		Outcome: e.Outcome,
		Reason:  e.Reason,
		TraceID: e.TraceID,
	}
	if len(e.Detail) > 0 {
		r.Detail = make(map[string]string, len(e.Detail))
		for k, v := range e.Detail {
			r.Detail[k] = v
		}
	}
	if e.Patient != "" {
		r.PatientRef = PatientRef(w.key, e.Tenant, e.Patient)
	} else {
		r.PatientRef = e.PatientRef
	}
	c, err := w.chain(e.Tenant)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.signer != nil && c.since >= w.every {
		// The checkpoint due after the previous record failed; it goes
		// first, so checkpoints stay every n records.
		if err := w.checkpoint(ctx, c, reasonInterval); err != nil {
			return err
		}
	}
	if err := w.append(ctx, c, r, false); err != nil {
		return err
	}
	c.since++
	if w.signer != nil && c.since >= w.every {
		// The record is durable, so Record succeeds; a failed checkpoint
		// is retried by the next Record on this chain, or by Close.
		_ = w.checkpoint(ctx, c, reasonInterval)
	}
	return nil
}

// Close appends a signed checkpoint to every chain this Writer appended to
// since its last checkpoint (when it has a signing key). Record fails
// after Close.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	chains := make([]*chain, 0, len(w.chains))
	for _, c := range w.chains {
		chains = append(chains, c)
	}
	w.mu.Unlock()
	if w.signer == nil {
		return nil
	}
	var errs []error
	for _, c := range chains {
		c.mu.Lock()
		if c.since > 0 {
			errs = append(errs, w.checkpoint(ctx, c, reasonClose))
		}
		c.mu.Unlock()
	}
	return errors.Join(errs...)
}

func (w *Writer) chain(tenant string) (*chain, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	c, ok := w.chains[tenant]
	if !ok {
		c = &chain{tenant: tenant, subject: "audit." + tenant + "." + w.service}
		w.chains[tenant] = c
	}
	return c, nil
}

// checkpoint appends a signed checkpoint over c's head. c.mu is held.
func (w *Writer) checkpoint(ctx context.Context, c *chain, reason string) error {
	r := Record{
		Time:    w.now().UTC().Round(0),
		Tenant:  c.tenant,
		Service: w.service,
		Actor:   Actor{Type: ActorService, ID: w.service},
		Action:  ActionCheckpoint,
		Object:  Object{Type: ObjectAuditChain},
		Outcome: OutcomeSuccess,
		Reason:  reason,
	}
	if err := w.append(ctx, c, r, true); err != nil {
		return fmt.Errorf("audit checkpoint: %w", err)
	}
	c.since = 0
	return nil
}

// append links r to c's head and publishes it, conditional on the head
// still being the chain's last message; when another writer got there
// first it reloads the head and tries again. sign makes r a checkpoint
// over the head it is linked to. c.mu is held.
func (w *Writer) append(ctx context.Context, c *chain, r Record, sign bool) error {
	for attempt := 1; ; attempt++ {
		if !c.loaded {
			if err := w.loadHead(ctx, c); err != nil {
				return err
			}
		}
		r.Seq, r.Prev = c.seq+1, c.hash
		if sign {
			r.Object.ID = c.hash
			sig := ed25519.Sign(w.signer, checkpointMessage(r.Tenant, r.Service, c.seq, c.hash))
			r.Signature = base64.StdEncoding.EncodeToString(sig)
		}
		h, err := r.computeHash()
		if err != nil {
			return fmt.Errorf("encode audit record: %w", err)
		}
		r.Hash = h
		data, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode audit record: %w", err)
		}
		msgID := r.Tenant + "." + r.Service + "." + strconv.FormatUint(r.Seq, 10)
		ack, err := w.js.PublishMsg(ctx, &nats.Msg{Subject: c.subject, Data: data},
			jetstream.WithMsgID(msgID),
			jetstream.WithExpectLastSequencePerSubject(c.streamSeq))
		if err == nil && !ack.Duplicate {
			c.seq, c.hash, c.streamSeq = r.Seq, r.Hash, ack.Sequence
			return nil
		}
		// A conflict, a duplicate id, or an unknown outcome: find out
		// what the chain's head is now.
		c.loaded = false
		if err == nil {
			err = fmt.Errorf("%w: %s", errDuplicate, msgID)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("publish audit record: %w", err)
		}
		if lerr := w.loadHead(ctx, c); lerr != nil {
			return fmt.Errorf("publish audit record: %w", errors.Join(err, lerr))
		}
		if c.hash == r.Hash {
			return nil // it was stored; only the acknowledgement was lost
		}
		if !isConflict(err) || attempt == maxAttempts {
			return fmt.Errorf("publish audit record: %w", err)
		}
		// Another writer is appending to the same chain: back off a
		// little, with jitter, so the two stop colliding.
		d := time.Duration(rand.N(attempt)+1) * time.Millisecond
		select {
		case <-ctx.Done():
			return fmt.Errorf("publish audit record: %w", ctx.Err())
		case <-time.After(d):
		}
	}
}

// loadHead reads c's head from the stream.
func (w *Writer) loadHead(ctx context.Context, c *chain) error {
	msg, err := w.stream.GetLastMsgForSubject(ctx, c.subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		c.seq, c.hash, c.streamSeq, c.loaded = 0, "", 0, true
		return nil
	}
	if err != nil {
		return fmt.Errorf("load audit chain head: %w", err)
	}
	var r Record
	if json.Unmarshal(msg.Data, &r) != nil || r.Seq == 0 || !hashRE.MatchString(r.Hash) {
		return fmt.Errorf("%w: %s stream seq %d", ErrChainHead, c.subject, msg.Sequence)
	}
	c.seq, c.hash, c.streamSeq, c.loaded = r.Seq, r.Hash, msg.Sequence, true
	return nil
}

// isConflict reports whether err says the chain moved on: JetStream's
// "wrong last sequence" (10071, or 10164 on replicated streams), or a
// duplicate message id.
func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return errors.Is(err, errDuplicate)
}
