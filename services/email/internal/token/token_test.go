package token_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/carenotify/carenotify/services/email/internal/token"
)

const id = "0193a5b2-7c1d-7e2f-8a9b-0c1d2e3f4a5b"

func keys(t *testing.T, fill byte) *token.Keys {
	t.Helper()
	k, err := token.New([]byte(strings.Repeat(string(rune(fill)), 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestUnsubscribe(t *testing.T) {
	k, other := keys(t, 'a'), keys(t, 'b')
	tok := k.Unsubscribe("acme", id)
	verp, _ := k.VERP(id)
	tests := []struct {
		name    string
		give    string
		wantErr bool
	}{
		{name: "valid", give: tok},
		{name: "other key", give: other.Unsubscribe("acme", id), wantErr: true},
		{name: "altered", give: strings.Replace(tok, "Y", "Z", 1) + "x", wantErr: true},
		{name: "a VERP token", give: verp, wantErr: true},
		{name: "empty", give: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant, gotID, err := k.ParseUnsubscribe(tt.give)
			if tt.wantErr {
				if !errors.Is(err, token.ErrInvalid) {
					t.Errorf("ParseUnsubscribe() = %q, %q, %v; want ErrInvalid", tenant, gotID, err)
				}
				return
			}
			if err != nil || tenant != "acme" || gotID != id {
				t.Errorf("ParseUnsubscribe() = %q, %q, %v", tenant, gotID, err)
			}
		})
	}
}

func TestVERP(t *testing.T) {
	k, other := keys(t, 'a'), keys(t, 'b')
	tok, err := k.VERP(id)
	if err != nil {
		t.Fatal(err)
	}
	if n := len("bounces+" + tok); n > 64 {
		t.Errorf("local part is %d octets, over 64", n)
	}
	otherTok, _ := other.VERP(id)
	tests := []struct {
		name    string
		give    string
		wantErr bool
	}{
		{name: "valid", give: tok},
		{name: "upper-cased by a relay", give: strings.ToUpper(tok)},
		{name: "other key", give: otherTok, wantErr: true},
		{name: "altered", give: tok[:20] + flip(tok[20]) + tok[21:], wantErr: true},
		{name: "unsubscribe token", give: k.Unsubscribe("acme", id), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := k.ParseVERP(tt.give)
			if tt.wantErr {
				if !errors.Is(err, token.ErrInvalid) {
					t.Errorf("ParseVERP() = %q, %v; want ErrInvalid", got, err)
				}
				return
			}
			if err != nil || got != id {
				t.Errorf("ParseVERP() = %q, %v", got, err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	k, err := token.New([]byte(strings.Repeat("k", 32)))
	if err != nil {
		f.Fatal(err)
	}
	verp, _ := k.VERP(id)
	f.Add(k.Unsubscribe("acme", id))
	f.Add(verp)
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		_, _, _ = k.ParseUnsubscribe(s)
		_, _ = k.ParseVERP(s)
	})
}

// flip returns another base32 character than c.
func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}
