package mllp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/carenotify/carenotify/pkg/hl7"
	hl7mllp "github.com/carenotify/carenotify/pkg/hl7/mllp"
	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/metrics"
)

// Ingester is what the server needs of the app.
type Ingester interface {
	IngestHL7(ctx context.Context, src app.Source, raw []byte) (app.HL7Result, error)
	IngestHL7Batch(ctx context.Context, src app.Source, raw []byte) (app.HL7BatchResult, error)
}

var _ Ingester = (*app.App)(nil)

// writeTimeout bounds writing one acknowledgement.
const writeTimeout = 30 * time.Second

// Options configure a Server.
type Options struct {
	// App processes messages. Required.
	App Ingester
	// Source is the sender every connection belongs to. Required.
	Source app.Source
	// MaxFrameBytes is the largest frame accepted.
	MaxFrameBytes int
	// MaxMessageBytes returns a source's own size limit for a frame
	// (max_body_bytes, below MaxFrameBytes), 0 for none; nil: none.
	MaxMessageBytes func(app.Source) int64
	// ReadTimeout closes a connection idle for this long.
	ReadTimeout time.Duration
	// MaxConns bounds concurrent connections; further ones wait in the
	// listen backlog.
	MaxConns int
	// TLS, when set, makes the listener speak TLS.
	TLS *tls.Config
	// Identify, when set, names each connection's source from its verified
	// client certificate (TLS must then require and verify one); a
	// connection whose certificate names no source is closed. Source is
	// then unused.
	Identify func(*x509.Certificate) (app.Source, bool)
	// Throttle, when set, takes one unit of the source's rate budget per
	// frame (a batch is one); false and the wait when it is spent.
	Throttle func(ctx context.Context, src app.Source) (bool, time.Duration, error)
	// Metrics counts messages; nil counts nothing.
	Metrics *Metrics
	// Logger receives one line per message (type, acknowledgment code,
	// event ids, never content). Required.
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Acks keeps the first acknowledgement of each message so that a
	// resend (same MSH-3, MSH-4, MSH-10 and content) is answered with it
	// and not processed again; nil processes every message. Each message
	// of a batch is looked up on its own.
	Acks AckStore
	// Inputs counts messages received, published, rejected and resent,
	// with their ACK latency; optional.
	Inputs InputMetrics
}

// Server is the MLLP listener.
type Server struct {
	o Options

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// New returns a Server.
func New(o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxConns < 1 {
		o.MaxConns = 1
	}
	return &Server{o: o, conns: map[net.Conn]struct{}{}}
}

// Serve accepts connections on l until ctx is cancelled, then closes l,
// lets each connection finish the message it is handling and closes it.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if s.o.TLS != nil {
		l = tls.NewListener(l, s.o.TLS)
	}
	shutdown := func() {
		_ = l.Close()
		s.mu.Lock()
		for c := range s.conns {
			// Wake a connection waiting for its next frame; one that is
			// handling a message finishes it first.
			_ = c.SetReadDeadline(time.Now())
		}
		s.mu.Unlock()
	}
	stop := context.AfterFunc(ctx, shutdown)
	defer stop()
	sem := make(chan struct{}, s.o.MaxConns)
	defer func() {
		shutdown()
		s.wg.Wait()
	}()
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		conn, err := l.Accept()
		if err != nil {
			<-sem
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return err
		}
		s.track(conn, true)
		if ctx.Err() != nil {
			_ = conn.SetReadDeadline(time.Now())
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-sem }()
			defer s.track(conn, false)
			cs := s
			if s.o.Identify != nil {
				src, ok := s.identify(ctx, conn)
				if !ok {
					return
				}
				cs = s.forSource(src)
			}
			cs.serveConn(ctx, conn)
		}()
	}
}

func (s *Server) track(c net.Conn, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		s.conns[c] = struct{}{}
		return
	}
	delete(s.conns, c)
	_ = c.Close()
}

// serveConn answers the frames of one connection until it closes, idles
// past the read timeout or the server stops.
func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	r := hl7mllp.NewReader(conn, s.o.MaxFrameBytes)
	remote := conn.RemoteAddr().String()
	s.o.Logger.DebugContext(ctx, "mllp connection opened", "source", s.o.Source.Name, "remote", remote)
	for ctx.Err() == nil {
		if err := conn.SetReadDeadline(s.o.Now().Add(s.o.ReadTimeout)); err != nil {
			return
		}
		frame, err := r.ReadFrame()
		switch {
		case errors.Is(err, hl7mllp.ErrFrameTooLarge):
			s.o.Metrics.message(s.o.Source.Name, "unknown", hl7.AckReject)
			s.handled(ctx, "unknown", app.HL7Result{}, "frame_too_large")
			s.o.Logger.WarnContext(ctx, "hl7 frame too large", "source", s.o.Source.Name, "remote", remote, "maxFrameBytes", s.o.MaxFrameBytes)
			ack := hl7.BuildACK(nil, hl7.AckReject, []*hl7.ParseError{{Code: hl7.CodeInternal, Msg: "message larger than the receiver accepts"}}, s.o.Now())
			if !s.write(conn, ack) {
				return
			}
			continue
		case err != nil:
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
				s.o.Logger.DebugContext(ctx, "mllp connection read", "source", s.o.Source.Name, "remote", remote, "err", err)
			}
			return
		}
		ack := s.handle(withReceived(context.WithoutCancel(ctx), time.Now()), frame)
		if ack != nil && !s.write(conn, ack) {
			return
		}
	}
}

func (s *Server) write(conn net.Conn, ack []byte) bool {
	if err := conn.SetWriteDeadline(s.o.Now().Add(writeTimeout)); err != nil {
		return false
	}
	return hl7mllp.WriteFrame(conn, ack) == nil
}

// handle processes one frame and returns the acknowledgement to send (nil
// when MSH-15 asks for none). It never panics.
func (s *Server) handle(ctx context.Context, frame []byte) (ack []byte) {
	defer func() {
		if r := recover(); r != nil {
			// The panic value may hold input: log only the stack.
			s.o.Logger.ErrorContext(ctx, "hl7 message panicked", "source", s.o.Source.Name, "stack", string(debug.Stack()))
			s.o.Metrics.message(s.o.Source.Name, "unknown", hl7.AckError)
			s.handled(ctx, "unknown", app.HL7Result{}, app.ReasonInternal)
			ack = hl7.BuildACK(nil, hl7.AckError, []*hl7.ParseError{{Code: hl7.CodeInternal, Msg: "internal error; retry later"}}, s.o.Now())
		}
	}()
	if ack, refused := s.tooLarge(ctx, frame); refused {
		return ack
	}
	if ack, refused := s.throttle(ctx, frame); refused {
		return ack
	}
	if hl7.IsBatch(frame) {
		return s.handleBatch(ctx, frame)
	}
	return s.handleMessage(ctx, frame)
}

// process hands one message to the app and answers it; final reports
// that the outcome cannot change on a retry (see final).
func (s *Server) process(ctx context.Context, frame []byte) (ack []byte, code string, isFinal bool) {
	res, err := s.o.App.IngestHL7(ctx, s.o.Source, frame)
	ack, code = s.answer(ctx, res, err)
	return ack, code, final(err)
}

// answer builds the acknowledgement of one message, counts and logs it,
// and returns it (nil when none is to be sent) with the code counted
// ("none" when none is sent).
func (s *Server) answer(ctx context.Context, res app.HL7Result, err error) ([]byte, string) {
	code := ackCode(res.Message, err)
	send := wantsAck(res.Message, code)
	label := code
	if !send {
		label = "none"
	}
	typ := typeLabel(res.Type, res.Supported)
	s.o.Metrics.message(s.o.Source.Name, typ, label)
	s.handled(ctx, typ, res, rejectReason(err))
	ids := make([]string, 0, len(res.Events))
	for _, e := range res.Events {
		ids = append(ids, e.ID)
	}
	attrs := []any{"source", s.o.Source.Name, "tenant", s.o.Source.Tenant, "type", typ, "ack", label, "eventIds", ids}
	if err != nil {
		s.o.Logger.WarnContext(ctx, "hl7 message not accepted", append(attrs, "err", err)...)
	} else {
		s.o.Logger.InfoContext(ctx, "hl7 message handled", attrs...)
	}
	if !send {
		return nil, label
	}
	return hl7.BuildACK(res.Message, code, ackErrors(err), s.o.Now()), label
}

// handleBatch answers a batch with a batch of acknowledgements, or with
// one AR when the batch's structure is broken (the app keeps the whole
// batch for replay then). Each message of a well-formed batch is handled
// as if it came alone (handleMessage), so a resent batch, or a message
// resent alone after arriving in a batch, is answered with the stored
// acknowledgements and not processed again.
func (s *Server) handleBatch(ctx context.Context, frame []byte) []byte {
	b, err := hl7.SplitBatch(frame)
	if err != nil {
		_, aerr := s.o.App.IngestHL7Batch(ctx, s.o.Source, frame)
		if aerr == nil { // the app splits as SplitBatch does; never here
			aerr = &app.Error{Kind: app.KindInvalid, Reason: app.ReasonHL7Invalid, Err: err,
				HL7: []*hl7.ParseError{{Code: hl7.CodeInternal, Msg: "the batch could not be split"}}}
		}
		ack, _ := s.answer(ctx, app.HL7Result{}, aerr)
		return ack
	}
	var acks [][]byte
	for _, msg := range b.Messages {
		if a := s.handleMessage(ctx, msg); a != nil {
			acks = append(acks, a)
		}
	}
	return batchACK(acks, s.o.Now())
}

// handled counts one message answered in the input metrics.
func (s *Server) handled(ctx context.Context, typ string, res app.HL7Result, reason string) {
	if s.o.Inputs == nil {
		return
	}
	in := metrics.Input{Source: s.o.Source.Name, Input: app.InputHL7, Type: typ, SameVersion: res.SameVersion,
		Rejected: reason, Elapsed: sinceReceived(ctx)}
	for _, e := range res.Events {
		if e.Duplicate {
			in.AlreadyStored++
		} else {
			in.Published++
		}
	}
	s.o.Inputs.Handled(in)
}

// rejectReason is the reason code of err, "" for nil.
func rejectReason(err error) string {
	if err == nil {
		return ""
	}
	var ae *app.Error
	if errors.As(err, &ae) && ae.Reason != "" {
		return ae.Reason
	}
	return app.ReasonInternal
}

// receivedKey carries the time a frame was read, for the latency metric.
type receivedKey struct{}

func withReceived(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, receivedKey{}, t)
}

// sinceReceived is the time since the frame was read; 0 when unknown
// (a replay).
func sinceReceived(ctx context.Context) time.Duration {
	if t, ok := ctx.Value(receivedKey{}).(time.Time); ok {
		return time.Since(t)
	}
	return 0
}
