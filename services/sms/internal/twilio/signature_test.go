package twilio

import (
	"net/url"
	"testing"
)

// Twilio's published example (https://www.twilio.com/docs/usage/security,
// and the signature_validation snippets of TwilioDevEd/api-snippets).
func TestSignatureTwilioExample(t *testing.T) {
	params := url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+14158675310"},
		"Digits":  {"1234"},
		"From":    {"+14158675310"},
		"To":      {"+18005551212"},
	}
	const fullURL = "https://mycompany.com/myapp.php?foo=1&bar=2"
	const want = "GvWf1cFY/Q7PnoempGyD5oXAezc="
	if got := Signature("12345", fullURL, params); got != want {
		t.Errorf("Signature() = %s, want %s", got, want)
	}
	if !Verify("12345", fullURL, params, want) {
		t.Error("Verify(example) = false")
	}
	tests := []struct {
		name      string
		token     string
		url       string
		params    url.Values
		signature string
	}{
		{"other token", "54321", fullURL, params, want},
		{"other url", "12345", "https://mycompany.com/myapp.php?foo=1&bar=3", params, want},
		{"other param", "12345", fullURL, url.Values{"CallSid": {"CA1234567890ABCDF"}}, want},
		{"no signature", "12345", fullURL, params, ""},
		{"no token", "", fullURL, params, want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if Verify(tt.token, tt.url, tt.params, tt.signature) {
				t.Error("Verify() = true")
			}
		})
	}
}
