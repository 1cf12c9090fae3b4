package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// A held gate must not hand a dialled connection to the server: closing
// the listener while held makes Accept fail instead. After release, the
// next connection comes through.
func TestGatedListenerHoldsUntilReleased(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := newGatedListener(l)
	g.hold()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := g.Accept()
		ch <- accepted{c, err}
	}()
	_ = g.Close()
	got := <-ch
	if got.err == nil {
		got.c.Close()
		t.Fatal("Accept returned a connection while the gate was held")
	}
	if !errors.Is(got.err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v, want net.ErrClosed", got.err)
	}

	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g2 := newGatedListener(l2)
	defer g2.Close()
	g2.hold()
	go func() {
		c, err := g2.Accept()
		ch <- accepted{c, err}
	}()
	c2, err := net.Dial("tcp", l2.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	g2.release()
	got = <-ch
	if got.err != nil {
		t.Fatalf("Accept after release: %v", got.err)
	}
	got.c.Close()
}

func TestTreeCPUTimeCoversChildren(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep command:", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	self, _ := CPUTime(0)
	if !slices.Contains(descendants(os.Getpid()), cmd.Process.Pid) {
		t.Errorf("descendants of the test process miss its child %d", cmd.Process.Pid)
	}
	if tree := TreeCPUTime(os.Getpid()); tree < self {
		t.Errorf("TreeCPUTime(self) = %s, less than the process's own %s", tree, self)
	}
	if pss := TreePSS(os.Getpid()); pss <= 0 {
		t.Errorf("TreePSS(self) = %d, want > 0", pss)
	}
}

// Messages sent over STARTTLS to the channel sink are counted by prefix,
// and describe tells whether their text is the scenario's body.
func TestChannelSinkCountsByPrefix(t *testing.T) {
	sink, err := startChannelSink(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sink.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	same := watchArrivals(ctx, sink.inbox, "bench.same", 2)
	other := watchArrivals(ctx, sink.inbox, "bench.other", 1)
	send := func(to, body string) {
		t.Helper()
		c, err := smtp.Dial(net.JoinHostPort("127.0.0.1", strconv.Itoa(sink.port)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.StartTLS(&tls.Config{ServerName: "127.0.0.1", RootCAs: sink.ca.Pool}); err != nil {
			t.Fatal(err)
		}
		msg := "From: clinic@example.org\r\nTo: " + to + "\r\nSubject: " + channelSubject + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
		if err := c.Mail("clinic@example.org"); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt(to); err != nil {
			t.Fatal(err)
		}
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	send("bench.same1@example.org", channelBody)
	send("bench.other1@example.org", "Something else.\r\n")
	send("bench.same2@example.org", channelBody)
	<-same.all
	<-other.all
	if got, _, _ := same.snapshot(); got != 2 {
		t.Errorf("same: %d counted, want 2", got)
	}
	if d := same.describe(); !strings.Contains(d, "is the scenario's body") || !strings.Contains(d, "all over STARTTLS") ||
		!strings.Contains(d, "DKIM at the sink: none 2") {
		t.Errorf("same: describe() = %q", d)
	}
	if d := other.describe(); !strings.Contains(d, "differs") {
		t.Errorf("other: describe() = %q", d)
	}
	if d := (&sinkCount{}).describe(); d != "nothing arrived" {
		t.Errorf("describe() with nothing = %q", d)
	}
}
