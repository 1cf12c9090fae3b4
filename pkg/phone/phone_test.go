package phone

import "testing"

func TestValidE164(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"+15550101234", true},
		{"+442079460000", true},
		{"+123456789012345", true},
		{"+1234567890123456", false}, // 16 digits
		{"15550101234", false},
		{"+05550101234", false},
		{"+1555010123a", false},
		{"+1 5550101234", false},
		{"+1234567", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ValidE164(tt.give); got != tt.want {
			t.Errorf("ValidE164(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, give, cc, want string
		ok                   bool
	}{
		{"e164", "+15550101234", "1", "+15550101234", true},
		{"formatted", "+1 (555) 010-1234", "1", "+15550101234", true},
		{"national", "202.555.0123", "1", "+12025550123", true},
		{"nanp with 1", "1-202-555-0123", "1", "+12025550123", true},
		{"tel uri", "tel:+15550101234", "1", "+15550101234", true},
		{"international prefix", "0044 20 7946 0000", "1", "+442079460000", true},
		{"trunk zero", "020 7946 0000", "44", "+442079460000", true},
		{"no country code", "5550101234", "", "", false},
		{"extension", "+15550101234 ext 12", "1", "", false},
		{"letters", "call me", "1", "", false},
		{"too short", "12345", "1", "", false},
		{"australian national under nanp", "(03) 7123 4567", "1", "", false},
		{"nanp exchange starting with 1", "555-110-1234", "1", "", false},
		{"australian national", "(03) 7123 4567", "61", "+61371234567", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Normalize(tt.give, tt.cc)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Normalize(%q, %q) = %q, %v; want %q, %v", tt.give, tt.cc, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestHasher(t *testing.T) {
	h := NewHasher([]byte("0123456789abcdef0123456789abcdef"))
	a := h.Hash("demo", "+15550101234")
	if a != h.Hash("demo", "+15550101234") {
		t.Error("hash is not stable")
	}
	if a == h.Hash("other", "+15550101234") {
		t.Error("two tenants share a hash")
	}
	if a == NewHasher([]byte("another key, another key, anothe")).Hash("demo", "+15550101234") {
		t.Error("two keys give the same hash")
	}
	if len(a) != 64 {
		t.Errorf("hash length %d, want 64 hex digits", len(a))
	}
}
