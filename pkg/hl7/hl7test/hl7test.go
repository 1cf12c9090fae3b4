// Package hl7test gives tests the shared HL7 v2 corpus
// (<repository>/../shared/corpus/hl7v2, see its SOURCES.md) and an MLLP
// test client.
package hl7test

import (
	"bufio"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/corpus"
	"github.com/carenotify/carenotify/pkg/hl7/mllp"
)

// CorpusDir returns the HL7 v2 corpus directory (shared/corpus/hl7v2
// beside the repository).
func CorpusDir(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(corpus.Dir(tb), "hl7v2")
}

// Files returns every corpus file by its slash-separated path relative to
// the corpus directory, e.g. "SIU_S12/msconv-SIU-S12-01.hl7", sorted.
func Files(tb testing.TB) []string {
	tb.Helper()
	root := CorpusDir(tb)
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".hl7" {
			return err
		}
		rel, err := filepath.Rel(root, p)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		tb.Fatalf("corpus: %v", err)
	}
	sort.Strings(out)
	return out
}

// Read returns the corpus file at rel.
func Read(tb testing.TB, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(CorpusDir(tb), filepath.FromSlash(rel)))
	if err != nil {
		tb.Fatalf("corpus: %v", err)
	}
	return b
}

// Client is an MLLP client over a real connection.
type Client struct {
	conn net.Conn
	r    *mllp.Reader
}

// Dial connects to an MLLP listener at addr; the connection closes when
// the test ends.
func Dial(tb testing.TB, addr string) *Client {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatalf("dial mllp: %v", err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return &Client{conn: conn, r: mllp.NewReader(bufio.NewReader(conn), 16<<20)}
}

// Conn returns the underlying connection.
func (c *Client) Conn() net.Conn { return c.conn }

// Send writes msg as one frame and returns the answer frame.
func (c *Client) Send(tb testing.TB, msg []byte) []byte {
	tb.Helper()
	if err := c.conn.SetDeadline(time.Now().Add(15 * time.Second)); err != nil {
		tb.Fatal(err)
	}
	if err := mllp.WriteFrame(c.conn, msg); err != nil {
		tb.Fatalf("write frame: %v", err)
	}
	ack, err := c.r.ReadFrame()
	if err != nil {
		tb.Fatalf("read ack: %v", err)
	}
	return ack
}

// Read returns the next answer frame, or the error.
func (c *Client) Read() ([]byte, error) {
	_ = c.conn.SetDeadline(time.Now().Add(15 * time.Second))
	return c.r.ReadFrame()
}
