package mllp_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/hl7/mllp"
)

func frame(s string) string { return "\x0b" + s + "\x1c\x0d" }

func TestReader(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		max     int
		want    []string
		wantErr []error
	}{
		{name: "two frames", give: frame("A") + frame("BB"), max: 10, want: []string{"A", "BB"}, wantErr: []error{nil, nil, io.EOF}},
		{name: "junk between", give: "junk\r\n" + frame("A") + "\x00\x1c" + frame("B"), max: 10, want: []string{"A", "B"}, wantErr: []error{nil, nil, io.EOF}},
		{name: "restart inside a frame", give: "\x0bhalf" + frame("A"), max: 10, want: []string{"A"}, wantErr: []error{nil, io.EOF}},
		{name: "too large then next", give: frame("0123456789ABC") + frame("ok"), max: 10, want: []string{"", "ok"}, wantErr: []error{mllp.ErrFrameTooLarge, nil, io.EOF}},
		{name: "too large runs into a start", give: "\x0b0123456789ABC" + frame("ok"), max: 10, want: []string{"", "ok"}, wantErr: []error{mllp.ErrFrameTooLarge, nil, io.EOF}},
		{name: "end block without cr", give: "\x0bA\x1c\x0bB\x1c", max: 10, want: []string{"A", "B"}, wantErr: []error{nil, nil, io.EOF}},
		{name: "cut inside a frame", give: "\x0bAB", max: 10, want: []string{""}, wantErr: []error{io.ErrUnexpectedEOF}},
		{name: "exactly max", give: frame("0123456789"), max: 10, want: []string{"0123456789"}, wantErr: []error{nil, io.EOF}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mllp.NewReader(bytes.NewReader([]byte(tt.give)), tt.max)
			var got []string
			for i, wantErr := range tt.wantErr {
				b, err := r.ReadFrame()
				if !errors.Is(err, wantErr) {
					t.Fatalf("frame %d: error %v, want %v", i, err, wantErr)
				}
				if i < len(tt.want) {
					got = append(got, string(b))
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("frames (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteFrame(t *testing.T) {
	var buf bytes.Buffer
	if err := mllp.WriteFrame(&buf, []byte("MSH|x\r")); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), frame("MSH|x\r"); got != want {
		t.Errorf("WriteFrame = %q, want %q", got, want)
	}
}

// FuzzMLLPReader reads arbitrary input: no panic, no frame over the
// maximum, and the reader always finishes.
func FuzzMLLPReader(f *testing.F) {
	f.Add([]byte(frame("MSH|^~\\&|A\r")+"junk"+frame("B")), 16)
	f.Add([]byte("\x0b\x0b\x1c\x1c\x0d\x0bx"), 1)
	f.Add([]byte(frame("0123456789")), 4)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max < 1 || max > 1<<16 {
			max = 64
		}
		r := mllp.NewReader(bytes.NewReader(data), max)
		for i := 0; i <= len(data)+1; i++ {
			b, err := r.ReadFrame()
			if len(b) > max {
				t.Fatalf("frame of %d bytes over max %d", len(b), max)
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return
			}
		}
		t.Fatalf("reader did not finish on %d bytes", len(data))
	})
}
