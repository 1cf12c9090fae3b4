package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"sort"
	"strings"
)

// Signature returns the X-Twilio-Signature Twilio sends with a POST to
// fullURL (scheme, host, path and query exactly as Twilio called it)
// carrying params: base64 of HMAC-SHA1, keyed with the auth token, of
// fullURL followed by every parameter's name and value, names sorted.
func Signature(authToken, fullURL string, params url.Values) string {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range names {
		for _, v := range params[k] {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	m := hmac.New(sha1.New, []byte(authToken))
	m.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify reports whether signature is Twilio's signature of the request,
// comparing in constant time. An empty signature never verifies.
func Verify(authToken, fullURL string, params url.Values, signature string) bool {
	if signature == "" || authToken == "" {
		return false
	}
	want := Signature(authToken, fullURL, params)
	return hmac.Equal([]byte(want), []byte(signature))
}
