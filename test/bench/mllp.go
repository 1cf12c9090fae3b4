package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// MLLP framing (HL7 v2, MLLP release 2): 0x0B message 0x1C 0x0D.
const (
	mllpStart = 0x0b
	mllpEnd   = 0x1c
	mllpCR    = 0x0d
)

// HL7Message builds unique copies of an HL7 v2 message: each gets its own
// message control id (MSH-10) and, as the id of the resource it is about,
// the same id in SCH-1/SCH-2, OBR-2/OBR-3 and PV1-19 (first component).
// Ingest keeps the last-seen state of each resource, so copies about one
// resource would give one event and then none.
type HL7Message struct {
	// Type is MSH-9, e.g. "ADT^A01".
	Type string
	// parts are the message split where the id goes.
	parts [][]byte
}

// idFields are the fields (segment, field number) that name the resource
// a message is about.
var idFields = map[string][]int{"SCH": {1, 2}, "OBR": {2, 3}, "PV1": {19}}

// idMark stands for the id in the template.
const idMark = "\x00id\x00"

// LoadHL7 reads an HL7 v2 message file, drops a leading UTF-8 byte order
// mark and ends segments with CR.
func LoadHL7(path string) (*HL7Message, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := strings.TrimPrefix(string(raw), "\ufeff")
	text = strings.NewReplacer("\r\n", "\r", "\n", "\r").Replace(text)
	segs := strings.Split(strings.TrimRight(text, "\r"), "\r")
	if !strings.HasPrefix(segs[0], "MSH|") {
		return nil, fmt.Errorf("%s: does not start with an MSH segment", path)
	}
	fields := strings.Split(segs[0], "|")
	if len(fields) < 12 {
		return nil, fmt.Errorf("%s: MSH has no field 10", path)
	}
	parts := strings.Split(fields[8], "^")
	typ := strings.Join(parts[:min(2, len(parts))], "^")
	fields[9] = idMark // MSH-10: MSH-1 is the separator itself
	segs[0] = strings.Join(fields, "|")
	for i, seg := range segs[1:] {
		f := strings.Split(seg, "|")
		for _, n := range idFields[f[0]] {
			if n < len(f) && f[n] != "" {
				comps := strings.Split(f[n], "^")
				comps[0] = idMark
				f[n] = strings.Join(comps, "^")
			}
		}
		segs[i+1] = strings.Join(f, "|")
	}
	m := &HL7Message{Type: typ}
	for _, p := range strings.Split(strings.Join(segs, "\r")+"\r", idMark) {
		m.parts = append(m.parts, []byte(p))
	}
	return m, nil
}

// Frame returns the message with id as control id and resource id,
// MLLP-framed.
func (m *HL7Message) Frame(id string) []byte {
	b := make([]byte, 0, m.Size(len(id)))
	b = append(b, mllpStart)
	for i, p := range m.parts {
		if i > 0 {
			b = append(b, id...)
		}
		b = append(b, p...)
	}
	return append(b, mllpEnd, mllpCR)
}

// Size is the framed size with an id of idLen characters.
func (m *HL7Message) Size(idLen int) int {
	n := 3 + (len(m.parts)-1)*idLen
	for _, p := range m.parts {
		n += len(p)
	}
	return n
}

// readFrame reads one MLLP frame and returns its content.
func readFrame(r *bufio.Reader) ([]byte, error) {
	if _, err := r.ReadBytes(mllpStart); err != nil {
		return nil, err
	}
	var out []byte
	for {
		chunk, err := r.ReadBytes(mllpEnd)
		if err != nil {
			return nil, err
		}
		out = append(out, chunk[:len(chunk)-1]...)
		c, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		if c == mllpCR {
			return out, nil
		}
		out = append(out, mllpEnd, c)
	}
}

// mllpConn is one client connection.
type mllpConn struct {
	c net.Conn
	r *bufio.Reader
}

// MLLPClient sends messages over a fixed set of MLLP connections, one
// message in flight per connection, as HL7 senders do.
type MLLPClient struct {
	addr  string
	conns chan *mllpConn
}

// NewMLLPClient opens conns connections to addr.
func NewMLLPClient(ctx context.Context, addr string, conns int) (*MLLPClient, error) {
	m := &MLLPClient{addr: addr, conns: make(chan *mllpConn, conns)}
	for range conns {
		c, err := m.dial(ctx)
		if err != nil {
			m.Close()
			return nil, err
		}
		m.conns <- c
	}
	return m, nil
}

func (m *MLLPClient) dial(ctx context.Context) (*mllpConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return nil, fmt.Errorf("mllp dial: %w", err)
	}
	return &mllpConn{c: c, r: bufio.NewReader(c)}, nil
}

// Send sends frame and waits for the acknowledgement, which must accept
// (MSA-1 AA or CA); it returns the acknowledgement.
func (m *MLLPClient) Send(ctx context.Context, frame []byte) ([]byte, error) {
	c := <-m.conns
	ack, err := c.roundTrip(frame)
	if err != nil {
		_ = c.c.Close()
		if nc, derr := m.dial(ctx); derr == nil {
			c = nc
		}
	}
	m.conns <- c
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(ack, []byte("MSA|AA|")) && !bytes.Contains(ack, []byte("MSA|CA|")) {
		return ack, fmt.Errorf("not accepted: %.200q", ack)
	}
	return ack, nil
}

func (c *mllpConn) roundTrip(frame []byte) ([]byte, error) {
	_ = c.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.c.Write(frame); err != nil {
		return nil, fmt.Errorf("mllp write: %w", err)
	}
	ack, err := readFrame(c.r)
	if err != nil {
		return nil, fmt.Errorf("mllp read ack: %w", err)
	}
	return ack, nil
}

// Close closes every connection.
func (m *MLLPClient) Close() {
	for {
		select {
		case c := <-m.conns:
			_ = c.c.Close()
		default:
			return
		}
	}
}

// MLLPEcho is the ceiling's server: it answers every frame at once with an
// acknowledgement built from a template, with the frame's MSH-10 in MSA-2.
type MLLPEcho struct {
	l    net.Listener
	ack  []byte // template; "{id}" stands for the control id
	wg   sync.WaitGroup
	mu   sync.Mutex
	open map[net.Conn]struct{}
}

// StartMLLPEcho listens on a free loopback port. ack is a real
// acknowledgement whose control id in MSA-2 is ctrlID.
func StartMLLPEcho(ack []byte, ctrlID string) (*MLLPEcho, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	tmpl := bytes.Replace(ack, []byte("|"+ctrlID), []byte("|{id}"), 1)
	e := &MLLPEcho{l: l, ack: tmpl, open: map[net.Conn]struct{}{}}
	e.wg.Go(e.serve)
	return e, nil
}

// Addr is the listener's host:port.
func (e *MLLPEcho) Addr() string { return e.l.Addr().String() }

func (e *MLLPEcho) serve() {
	for {
		c, err := e.l.Accept()
		if err != nil {
			return
		}
		e.mu.Lock()
		e.open[c] = struct{}{}
		e.mu.Unlock()
		e.wg.Go(func() {
			defer func() {
				e.mu.Lock()
				delete(e.open, c)
				e.mu.Unlock()
				_ = c.Close()
			}()
			r := bufio.NewReader(c)
			for {
				frame, err := readFrame(r)
				if err != nil {
					return
				}
				out := append([]byte{mllpStart}, bytes.Replace(e.ack, []byte("{id}"), controlID(frame), 1)...)
				if _, err := c.Write(append(out, mllpEnd, mllpCR)); err != nil {
					return
				}
			}
		})
	}
}

// controlID returns MSH-10 of a message.
func controlID(msg []byte) []byte {
	seg, _, _ := bytes.Cut(msg, []byte{'\r'})
	f := bytes.Split(seg, []byte{'|'})
	if len(f) < 10 {
		return nil
	}
	return f[9]
}

// Close stops the server and closes its connections.
func (e *MLLPEcho) Close() error {
	err := e.l.Close()
	e.mu.Lock()
	for c := range e.open {
		_ = c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
