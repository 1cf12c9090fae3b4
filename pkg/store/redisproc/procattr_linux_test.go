package redisproc

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestServerDiesWithParent runs Start in a child copy of this test binary,
// SIGKILLs the child and checks its redis-server went away with it.
func TestServerDiesWithParent(t *testing.T) {
	if os.Getenv("REDISPROC_CHILD") == "1" {
		s, err := Start(context.Background(), Options{Dir: os.Getenv("REDISPROC_DIR")})
		if err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("url " + s.URL + "\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestServerDiesWithParent$")
	cmd.Env = append(os.Environ(), "REDISPROC_CHILD=1", "REDISPROC_DIR="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child said nothing: %v", err)
	}
	if strings.Contains(line, ErrNotInstalled.Error()) {
		_ = cmd.Process.Kill()
		t.Skip(line)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "url ")
	if !ok {
		_ = cmd.Process.Kill()
		t.Fatalf("child: %s", line)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("child's redis-server not answering: %v", err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(t.Context()).Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server still answers 10 s after the process that started it was killed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var netErr error = c.Ping(t.Context()).Err()
	if netErr == nil || errors.Is(netErr, context.Canceled) {
		t.Fatalf("ping after kill = %v", netErr)
	}
}
