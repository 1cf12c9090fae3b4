package lifecycle_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/carenotify/carenotify/pkg/lifecycle"
)

func TestGroupStopsOnCancel(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := lifecycle.NewGroup(slog.New(slog.DiscardHandler), time.Second)
	g.HTTP("http", l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hi") }))
	workerStopped := make(chan struct{})
	g.Go("worker", func(ctx context.Context) error { <-ctx.Done(); close(workerStopped); return nil })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()

	resp, err := http.Get("http://" + l.Addr().String())
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v, want nil after cancel", err)
	}
	<-workerStopped
	if _, err := http.Get("http://" + l.Addr().String()); err == nil {
		t.Error("server still answers after Run returned")
	}
}

func TestGroupStopsOnFailure(t *testing.T) {
	g := lifecycle.NewGroup(slog.New(slog.DiscardHandler), time.Second)
	boom := errors.New("boom")
	g.Go("failing", func(context.Context) error { return boom })
	g.Go("waiting", func(ctx context.Context) error { <-ctx.Done(); return nil })
	if err := g.Run(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("Run() = %v, want boom", err)
	}
}
