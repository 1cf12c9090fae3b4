package inbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ids(msgs []Message) []string {
	out := []string{}
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

func addN(in *Inbox, n int) {
	for i := range n {
		in.add(Message{ID: fmt.Sprint(i), Kind: KindEmail, To: []string{fmt.Sprintf("p%d@example.com", i)}})
	}
}

func TestMessagesNewestFirstAndBounded(t *testing.T) {
	tests := []struct {
		name string
		give int // messages added to an inbox that keeps 3
		want []string
	}{
		{name: "empty", give: 0, want: []string{}},
		{name: "under the limit", give: 2, want: []string{"1", "0"}},
		{name: "at the limit", give: 3, want: []string{"2", "1", "0"}},
		{name: "over the limit drops the oldest", give: 5, want: []string{"4", "3", "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := New()
			in.limit = 3
			addN(in, tt.give)
			if diff := cmp.Diff(tt.want, ids(in.Messages())); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMessageAndReset(t *testing.T) {
	in := New()
	addN(in, 2)
	if _, ok := in.Message("1"); !ok {
		t.Fatal(`Message("1") not found`)
	}
	in.Reset()
	if _, ok := in.Message("1"); ok {
		t.Error(`Message("1") found after Reset`)
	}
	if diff := cmp.Diff([]string{}, ids(in.Messages())); diff != "" {
		t.Errorf("ids after Reset (-want +got):\n%s", diff)
	}
}

func toIs(addr string) func(Message) bool {
	return func(m Message) bool { return slices.Contains(m.To, addr) }
}

func TestWaitReturnsNewestStoredMatch(t *testing.T) {
	in := New()
	addN(in, 3)
	in.add(Message{ID: "again", To: []string{"p1@example.com"}})
	got, err := in.Wait(t.Context(), toIs("p1@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("again", got.ID); diff != "" {
		t.Errorf("id (-want +got):\n%s", diff)
	}
}

func TestWaitBlocksUntilMatch(t *testing.T) {
	in := New()
	addN(in, 2)
	done := make(chan Message)
	go func() {
		m, err := in.Wait(t.Context(), toIs("late@example.com"))
		if err != nil {
			t.Error(err)
		}
		done <- m
	}()
	in.add(Message{ID: "other", To: []string{"other@example.com"}})
	in.add(Message{ID: "late", To: []string{"late@example.com"}})
	select {
	case m := <-done:
		if diff := cmp.Diff("late", m.ID); diff != "" {
			t.Errorf("id (-want +got):\n%s", diff)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return")
	}
}

func TestWaitContextDone(t *testing.T) {
	in := New()
	addN(in, 2)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := in.Wait(ctx, toIs("nobody@example.com"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want %v", err, context.DeadlineExceeded)
	}
}

// TestConcurrentUse is for the race detector.
func TestConcurrentUse(t *testing.T) {
	in := New()
	in.limit = 10
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				in.add(Message{ID: fmt.Sprint(w, "-", i), To: []string{"p@example.com"}})
				in.Messages()
				in.Message("0-0")
			}
		})
	}
	wg.Go(func() {
		// Reset may empty the inbox at any moment, so the outcome is not
		// asserted; only the absence of races is.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		in.Wait(ctx, func(m Message) bool { return len(in.Messages()) > 0 })
	})
	wg.Go(func() {
		for range 20 {
			in.Reset()
		}
	})
	wg.Wait()
}
