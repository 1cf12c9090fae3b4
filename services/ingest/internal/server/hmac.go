package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries an HMAC source's signature:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">", with
// several v1 values allowed (one per secret while the sender rotates).
const SignatureHeader = "X-Carenotify-Signature"

// hmacChallenge is the WWW-Authenticate value of an HMAC source's 401.
const hmacChallenge = `Carenotify-HMAC header="` + SignatureHeader + `"`

// maxSignatures bounds the v1 values of one header.
const maxSignatures = 8

// signatureFormat is what diagnostics tell a sender to send.
const signatureFormat = SignatureHeader + `: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`

// hmacVerifier checks the signatures of one HMAC source.
type hmacVerifier struct {
	secrets [][]byte
	skew    time.Duration
}

// hmacError is a 401 of an HMAC source with its reason.
func hmacError(reason, diagnostics string) *requestError {
	return &requestError{status: http.StatusUnauthorized, code: "security", reason: reason,
		diagnostics: diagnostics, challenge: hmacChallenge}
}

// signature is a parsed SignatureHeader whose timestamp is in the window.
type signature struct {
	ts   int64
	sigs [][]byte
}

// check parses header and checks its timestamp against now: what can be
// refused before the body is read. Diagnostics say what is wrong, never
// what was sent.
func (v *hmacVerifier) check(header string, now time.Time) (signature, error) {
	if strings.TrimSpace(header) == "" {
		return signature{}, hmacError("hmac_missing", "no "+SignatureHeader+" header; this source signs its requests: send "+signatureFormat)
	}
	ts, sigs, err := parseSignature(header)
	if err != nil {
		return signature{}, err
	}
	if d := now.Sub(time.Unix(ts, 0)); d > v.skew || d < -v.skew {
		dir := "ahead of"
		if d > 0 {
			dir = "behind"
		}
		return signature{}, hmacError("hmac_stale", fmt.Sprintf("the signature's timestamp t is %s the receiver's clock by more than the %d s allowed; sign each delivery (retries too) with the current time",
			dir, int(v.skew/time.Second)))
	}
	return signature{ts: ts, sigs: sigs}, nil
}

// match returns the v1 signature that is the HMAC of body under one of
// the source's secrets: the replay cache's key material.
func (v *hmacVerifier) match(sig signature, body []byte) ([]byte, error) {
	prefix := strconv.FormatInt(sig.ts, 10) + "."
	for _, secret := range v.secrets {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(prefix))
		m.Write(body)
		want := m.Sum(nil)
		for _, got := range sig.sigs {
			if hmac.Equal(got, want) {
				return got, nil
			}
		}
	}
	return nil, hmacError("hmac_bad_signature", `no v1 signature matches: each v1 must be the hex HMAC-SHA256, under the source's secret, of the timestamp t, ".", and the raw body exactly as sent`)
}

// replayTTL is how long an accepted signature is remembered: longer than
// any time its timestamp stays inside the ±skew window.
func (v *hmacVerifier) replayTTL() time.Duration { return 2*v.skew + time.Minute }

// parseSignature reads "t=<unix seconds>,v1=<hex>[,v1=<hex>...]"; other
// keys (future schemes) are ignored.
func parseSignature(header string) (int64, [][]byte, error) {
	malformed := func(what string) (int64, [][]byte, error) {
		return 0, nil, hmacError("hmac_malformed", "malformed "+SignatureHeader+" header: "+what+"; send "+signatureFormat)
	}
	var (
		ts    int64
		hasTS bool
		sigs  [][]byte
	)
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return malformed("every element must be key=value")
		}
		switch k {
		case "t":
			if hasTS {
				return malformed("t is given twice")
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 || len(v) > 12 {
				return malformed("t must be a positive integer of unix seconds")
			}
			ts, hasTS = n, true
		case "v1":
			if len(v) != 2*sha256.Size {
				return malformed("v1 must be 64 hex digits")
			}
			b, err := hex.DecodeString(v)
			if err != nil {
				return malformed("v1 must be 64 hex digits")
			}
			if len(sigs) == maxSignatures {
				return malformed(fmt.Sprintf("more than %d v1 signatures", maxSignatures))
			}
			sigs = append(sigs, b)
		}
	}
	switch {
	case !hasTS:
		return malformed("no t")
	case len(sigs) == 0:
		return malformed("no v1")
	}
	return ts, sigs, nil
}

// Sign returns the header value signing body at t with secrets (one v1
// per secret): what a sender computes. Tests and the demo use it.
func Sign(t time.Time, body []byte, secrets ...[]byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=" + ts)
	for _, s := range secrets {
		m := hmac.New(sha256.New, s)
		m.Write([]byte(ts + "."))
		m.Write(body)
		b.WriteString(",v1=" + hex.EncodeToString(m.Sum(nil)))
	}
	return b.String()
}
