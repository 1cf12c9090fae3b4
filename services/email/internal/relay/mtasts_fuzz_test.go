package relay_test

import (
	"strings"
	"testing"
	"time"

	"github.com/carenotify/carenotify/services/email/internal/relay"
)

// FuzzParseSTSPolicy: any policy file parses or is refused without a
// panic; what parses has a known mode, mx patterns unless "none", and a
// max_age of at most a year.
func FuzzParseSTSPolicy(f *testing.F) {
	f.Add("version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800\n")
	f.Add("version: STSv1\r\nmode: testing\r\nmx: mx.example.org\r\nmax_age: 86400\r\n")
	f.Add("version: STSv1\nmode: none\nmax_age: 99999999999\n")
	f.Add("version: STSv1\nmode: enforce\nmax_age: -1\n")
	f.Fuzz(func(t *testing.T, body string) {
		p, err := relay.ParseSTSPolicy(strings.NewReader(body))
		if err != nil {
			return
		}
		switch {
		case p.Mode != relay.STSEnforce && p.Mode != relay.STSTesting && p.Mode != relay.STSNone:
			t.Errorf("mode %q accepted", p.Mode)
		case p.Mode != relay.STSNone && len(p.MX) == 0:
			t.Error("policy without mx accepted")
		case p.MaxAge < 0 || p.MaxAge > 31557600*time.Second:
			t.Errorf("max_age %v accepted", p.MaxAge)
		}
	})
}
