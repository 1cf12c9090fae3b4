package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/carenotify/carenotify/pkg/store"
	"github.com/carenotify/carenotify/pkg/store/storetest"
)

func TestRedisRoundTrip(t *testing.T) {
	c := storetest.Client(t)
	key := store.Key("t-"+t.Name(), "idem", "k1")
	ok, err := c.SetNX(t.Context(), key, "m1", 0).Result()
	if err != nil || !ok {
		t.Fatalf("SetNX = %v, %v", ok, err)
	}
	ok, err = c.SetNX(t.Context(), key, "m2", 0).Result()
	if err != nil || ok {
		t.Fatalf("second SetNX = %v, %v; want false", ok, err)
	}
	if err := store.Ready(c)(t.Context()); err != nil {
		t.Errorf("Ready = %v", err)
	}
}

func TestNewRedisErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{name: "bad url hides password", give: "redis://:s3cret@[::1", want: "invalid url"},
		{name: "nothing listening", give: "redis://127.0.0.1:1/0", want: "redis ping 127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := store.NewRedis(context.Background(), tt.give)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("NewRedis(%q) = %v, want error containing %q", tt.give, err, tt.want)
			}
		})
	}
}

func TestKey(t *testing.T) {
	if got, want := store.Key("demo", "email", "msg", "0190"), "cn:{demo}:email:msg:0190"; got != want {
		t.Errorf("Key() = %q, want %q", got, want)
	}
}
