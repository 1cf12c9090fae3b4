package log

import "strings"

// This file holds the hand-written scanner behind value rule 2 of the package
// documentation. It runs on every logged string, so it does one pass, never
// allocates when nothing matches, and cuts only next to ASCII bytes, so valid
// UTF-8 stays valid.

// redactString replaces every email address, phone number and SSN in s with
// [Redacted] and reports whether it replaced anything.
func redactString(s string) (string, bool) {
	if !mayHoldIdentifier(s) {
		return s, false
	}
	var b strings.Builder
	last := 0 // s[:last] has been written to b or replaced
	for i := 0; i < len(s); {
		start, end := i, -1
		switch c := s[i]; {
		case c == '@':
			start, end = matchEmail(s, i, last)
		case c == '+':
			end = matchE164(s, i)
		case (isDigit(c) || c == '(') && boundaryBefore(s, i):
			if end = matchNANP(s, i); end < 0 {
				end = matchSSN(s, i)
			}
		}
		if end < 0 {
			i++
			continue
		}
		if b.Cap() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last:start])
		b.WriteString(Redacted)
		last, i = end, end
	}
	if last == 0 {
		return s, false
	}
	b.WriteString(s[last:])
	return b.String(), true
}

// mayHoldIdentifier is a cheap filter: every pattern needs an '@' or at least
// eight digits.
func mayHoldIdentifier(s string) bool {
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '@':
			return true
		case isDigit(c):
			if digits++; digits == 8 {
				return true
			}
		}
	}
	return false
}

// matchEmail matches an email address around the '@' at s[at]: a run of
// local-part bytes before it (not reaching back past last) and a run of domain
// bytes after it that holds a '.' followed by two letters. It is deliberately
// greedy. It returns the match's bounds, or end -1.
func matchEmail(s string, at, last int) (start, end int) {
	start = at
	for start > last && isLocalByte(s[start-1]) {
		start--
	}
	// A local part already replaced by an earlier match still counts.
	if start == at && (at == 0 || at != last) {
		return at, -1
	}
	end = at + 1
	for end < len(s) && isDomainByte(s[end]) {
		end++
	}
	for end > at+1 && (s[end-1] == '.' || s[end-1] == '-') {
		end--
	}
	if !hasTLD(s[at+1 : end]) {
		return at, -1
	}
	return start, end
}

// hasTLD reports whether domain holds a '.' followed by two letters.
func hasTLD(domain string) bool {
	for k := 0; k+2 < len(domain); k++ {
		if domain[k] == '.' && isLetterish(domain[k+1]) && isLetterish(domain[k+2]) {
			return true
		}
	}
	return false
}

// matchE164 matches an international number at the '+' at s[at]: a non-zero
// digit, then groups of digits separated by at most two of " -.()", 8 to 15
// digits in all. Groups past 15 digits are left out of the match. Two groups
// split by a single '.' are a signed decimal ("m=+1.234567890" in
// time.Time.String), not a phone number. It returns the end, or -1.
func matchE164(s string, at int) int {
	i := at + 1
	if i >= len(s) || s[i] < '1' || s[i] > '9' {
		return -1
	}
	digits, groups, end := 0, 0, -1
	firstSep := ""
	for {
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if digits+j-i > 15 {
			if groups == 0 {
				return -1
			}
			break
		}
		digits += j - i
		groups++
		end = j
		k := j
		for k < len(s) && k-j < 2 && isE164Sep(s[k]) {
			k++
		}
		if k == j || k >= len(s) || !isDigit(s[k]) {
			break
		}
		if groups == 1 {
			firstSep = s[j:k]
		}
		i = k
	}
	if digits < 8 || (groups == 2 && firstSep == ".") {
		return -1
	}
	return end
}

// matchNANP matches a North American number at s[at]: an optional "1" and
// separator, then "(555) 123-4567", "(555)123-4567", "555-123-4567",
// "555.123.4567" or "555 123 4567". Ten bare digits are not matched: they
// are far more often Unix times than phone numbers. It returns the end, or -1.
func matchNANP(s string, at int) int {
	if s[at] == '1' && at+2 < len(s) && isNANPSep(s[at+1]) {
		if end := matchNANPBody(s, at+2); end >= 0 {
			return end
		}
	}
	return matchNANPBody(s, at)
}

func matchNANPBody(s string, i int) int {
	paren := i < len(s) && s[i] == '('
	if paren {
		if !digitsAt(s, i+1, 3) || i+4 >= len(s) || s[i+4] != ')' {
			return -1
		}
		i += 5
		if i < len(s) && isNANPSep(s[i]) {
			i++
		}
	} else {
		if !digitsAt(s, i, 3) || i+3 >= len(s) || !isNANPSep(s[i+3]) {
			return -1
		}
		i += 4
	}
	if !digitsAt(s, i, 3) {
		return -1
	}
	i += 3
	switch {
	case i < len(s) && isNANPSep(s[i]):
		i++
	case !paren:
		return -1
	}
	if !digitsAt(s, i, 4) {
		return -1
	}
	i += 4
	if !boundaryAfter(s, i) {
		return -1
	}
	return i
}

// matchSSN matches a US social security number, "123-45-6789" or
// "123 45 6789", at s[at]. It returns the end, or -1.
func matchSSN(s string, at int) int {
	if !digitsAt(s, at, 3) || at+3 >= len(s) {
		return -1
	}
	sep := s[at+3]
	if sep != '-' && sep != ' ' {
		return -1
	}
	if !digitsAt(s, at+4, 2) || at+6 >= len(s) || s[at+6] != sep || !digitsAt(s, at+7, 4) {
		return -1
	}
	end := at + 11
	if !boundaryAfter(s, end) {
		return -1
	}
	return end
}

// boundaryBefore reports whether a number may start at s[i]: it must not
// continue a word or a chain of digit groups such as a UUID or a date.
func boundaryBefore(s string, i int) bool {
	if i == 0 {
		return true
	}
	p := s[i-1]
	if isAlnum(p) {
		return false
	}
	return !((p == '-' || p == '.') && i >= 2 && isDigit(s[i-2]))
}

// boundaryAfter reports whether a number may end at s[i]: it must not run on
// into a word or into another digit group.
func boundaryAfter(s string, i int) bool {
	if i >= len(s) {
		return true
	}
	c := s[i]
	if isAlnum(c) {
		return false
	}
	return !((c == '-' || c == '.') && i+1 < len(s) && isDigit(s[i+1]))
}

// digitsAt reports whether s[i:i+n] exists and is all digits.
func digitsAt(s string, i, n int) bool {
	if i < 0 || i+n > len(s) {
		return false
	}
	for k := i; k < i+n; k++ {
		if !isDigit(s[k]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlnum(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// isLetterish reports whether c is an ASCII letter or part of a non-ASCII
// character (internationalised domain names).
func isLetterish(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c >= 0x80
}

// isLocalByte reports whether c may be part of an email local part. It takes
// RFC 5322 atext and UTF-8 but leaves out '/', '=', '?' and '&' so that
// "?email=jane@example.org" keeps its "?email=".
func isLocalByte(c byte) bool {
	if isAlnum(c) || c >= 0x80 {
		return true
	}
	switch c {
	case '.', '_', '%', '+', '-', '\'', '!', '#', '$', '*', '^', '`', '{', '|', '}', '~':
		return true
	}
	return false
}

func isDomainByte(c byte) bool {
	return isAlnum(c) || c >= 0x80 || c == '.' || c == '-' || c == '_'
}

func isE164Sep(c byte) bool {
	return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')'
}

func isNANPSep(c byte) bool { return c == ' ' || c == '-' || c == '.' }
