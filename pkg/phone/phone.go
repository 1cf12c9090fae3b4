package phone

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// MaxDigits is the most digits an E.164 number has, country code included.
const MaxDigits = 15

// ValidE164 reports whether s is a number in E.164 form: "+", a country
// code that does not start with 0, and 8 to 15 digits in all (the shortest
// numbers in use have 8), nothing else.
func ValidE164(s string) bool {
	if len(s) < 9 || len(s) > MaxDigits+1 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Normalize turns a number as an EHR sends it ("+1 (555) 010-1234",
// "555.010.1234", "tel:+15550101234", "0044 20 7946 0000") into E.164.
// Spaces, dots, dashes, slashes and parentheses are dropped; a leading
// "00" is the international prefix; a number without either is national
// and gets countryCode (digits, e.g. "1") with one leading trunk "0"
// dropped; for country code 1 (North America) a national number must be
// ten digits (a leading 1 is dropped), area code and exchange starting
// with 2-9. It returns false when the result is not
// E.164 or the input holds anything else (letters, an extension).
func Normalize(raw, countryCode string) (string, bool) {
	s := strings.TrimSpace(raw)
	s = strings.TrimPrefix(s, "tel:")
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '/' || r == '\u00a0':
		default:
			return "", false
		}
	}
	n := b.String()
	switch {
	case strings.HasPrefix(n, "+"):
	case strings.HasPrefix(n, "00"):
		n = "+" + n[2:]
	case countryCode == "":
		return "", false
	case countryCode == "1":
		// North American numbers: ten digits, area code and exchange not
		// starting with 0 or 1; often written with a leading 1.
		if len(n) == 11 && n[0] == '1' {
			n = n[1:]
		}
		if len(n) != 10 || n[0] < '2' || n[3] < '2' {
			return "", false
		}
		n = "+1" + n
	default:
		n = "+" + countryCode + strings.TrimPrefix(n, "0")
	}
	if !ValidE164(n) {
		return "", false
	}
	return n, true
}

// Hasher computes keyed hashes of numbers.
type Hasher struct {
	key []byte
}

// NewHasher returns a Hasher whose key is derived from the audit pseudonym
// key: HMAC-SHA256(pseudonymKey, "carenotify phone number hash v1").
func NewHasher(pseudonymKey []byte) *Hasher {
	m := hmac.New(sha256.New, pseudonymKey)
	m.Write([]byte("carenotify phone number hash v1"))
	return &Hasher{key: m.Sum(nil)}
}

// Hash returns the hex HMAC-SHA256 of "tenant|number" under the derived
// key. number must be E.164 (see [Normalize]); the same number of another
// tenant hashes differently.
func (h *Hasher) Hash(tenant, number string) string {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(tenant + "|" + number))
	return hex.EncodeToString(m.Sum(nil))
}
