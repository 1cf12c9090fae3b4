package mllp

import (
	"bufio"
	"errors"
	"io"
)

// Frame bytes.
const (
	StartBlock     = 0x0B
	EndBlock       = 0x1C
	CarriageReturn = 0x0D
)

// ErrFrameTooLarge is returned by ReadFrame when a frame is longer than the
// Reader's maximum. The Reader skips the rest of that frame; the next
// ReadFrame returns the frame after it.
var ErrFrameTooLarge = errors.New("mllp: frame too large")

// Reader reads MLLP frames.
type Reader struct {
	r   *bufio.Reader
	max int
	// pendingStart is set when a start block was read inside an unfinished
	// frame, so the next frame begins at once.
	pendingStart bool
}

// NewReader returns a Reader of frames of at most max bytes (between the
// start and end blocks) from r.
func NewReader(r io.Reader, max int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 32<<10), max: max}
}

// ReadFrame returns the next frame's content. It returns io.EOF at the end
// of the input between frames, io.ErrUnexpectedEOF when the input ends
// inside a frame, ErrFrameTooLarge for a frame over the maximum, and the
// underlying reader's errors (deadlines) as they are. The returned slice is
// the caller's.
func (r *Reader) ReadFrame() ([]byte, error) {
	if !r.pendingStart {
		// Skip junk (and the rest of a too-large frame) up to a start block.
		for {
			c, err := r.r.ReadByte()
			if err != nil {
				return nil, err
			}
			if c == StartBlock {
				break
			}
		}
	}
	r.pendingStart = false
	var buf []byte
	for {
		c, err := r.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		switch c {
		case StartBlock:
			// The sender gave up on the frame and started another.
			buf = buf[:0]
			continue
		case EndBlock:
			next, err := r.r.ReadByte()
			if err == nil && next != CarriageReturn {
				// Tolerate a missing CR after the end block.
				_ = r.r.UnreadByte()
			}
			if err != nil && err != io.EOF {
				return nil, err
			}
			return buf, nil
		}
		if len(buf) >= r.max {
			return nil, r.skipFrame()
		}
		buf = append(buf, c)
	}
}

// skipFrame drops bytes up to the end of the current frame (or the next
// start block) and returns ErrFrameTooLarge, or a read error.
func (r *Reader) skipFrame() error {
	for {
		c, err := r.r.ReadByte()
		if err != nil {
			if err == io.EOF {
				return ErrFrameTooLarge
			}
			return err
		}
		switch c {
		case EndBlock:
			if next, err := r.r.ReadByte(); err == nil && next != CarriageReturn {
				_ = r.r.UnreadByte()
			}
			return ErrFrameTooLarge
		case StartBlock:
			r.pendingStart = true
			return ErrFrameTooLarge
		}
	}
}

// WriteFrame writes msg as one frame. msg must not contain the frame bytes
// 0x0B or 0x1C (HL7 text never does).
func WriteFrame(w io.Writer, msg []byte) error {
	frame := make([]byte, 0, len(msg)+3)
	frame = append(frame, StartBlock)
	frame = append(frame, msg...)
	frame = append(frame, EndBlock, CarriageReturn)
	_, err := w.Write(frame)
	return err
}
