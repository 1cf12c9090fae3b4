package app

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/carenotify/carenotify/pkg/bus"
)

// TLSLevel is the least transport security a message may cross to the
// next hop with.
type TLSLevel int

// TLS levels.
const (
	// TLSVerified: STARTTLS with TLS ≥ 1.2 and a certificate that verifies
	// for the next hop's host name; nothing is sent otherwise.
	TLSVerified TLSLevel = iota
	// TLSOpportunistic: STARTTLS when the next hop offers it, whether or
	// not its certificate verifies (the transport says which); plaintext
	// when it offers none. Only for content that carries no PHI, or whose
	// body is encrypted for the recipient.
	TLSOpportunistic
)

// String returns the level's name as policies spell it.
func (l TLSLevel) String() string {
	if l == TLSOpportunistic {
		return TLSNameOpportunistic
	}
	return TLSNameVerified
}

// Names of policy values.
const (
	TLSNameVerified      = "verified"
	TLSNameOpportunistic = "opportunistic"

	EncryptIfKey    = "if_key"
	EncryptRequired = "required"
	EncryptOff      = "off"

	UnverifiedHold  = "hold"
	UnverifiedDefer = "defer"
)

// DefaultEncryptedSubject is the Subject an encrypted message shows
// outside its encryption; the real one travels inside (protected headers).
const DefaultEncryptedSubject = "Secure message"

// Policy is a tenant's transport policy: how its messages may travel.
// The zero value is not valid; start from DefaultPolicy.
type Policy struct {
	// Encryption says when PHI is encrypted for the recipient: if_key (when
	// an S/MIME certificate or OpenPGP key is on record), required (PHI
	// without a key on record is held, never sent in clear), off.
	Encryption string `json:"encryption"`
	// NoPHITLS is the TLS level for messages marked no-phi: opportunistic
	// or verified.
	NoPHITLS string `json:"no_phi_tls"`
	// EncryptedTLS is the TLS level for PHI whose body is encrypted for the
	// recipient: verified (the default: encryption is added on top of the
	// transport PHI always needs, so envelope and headers stay protected
	// too) or opportunistic (the body and real Subject are safe without
	// TLS; the outer Subject is EncryptedSubject, the addresses and Date
	// remain visible on an unverified hop).
	EncryptedTLS string `json:"encrypted_tls"`
	// Unverified says what happens to a message whose required TLS level
	// the next hop cannot offer (no STARTTLS, a certificate that does not
	// verify, an MTA-STS policy failure): hold (kept sealed for the
	// secure-message portal; never downgraded) or defer (retried until it
	// expires, for relays with passing certificate trouble).
	Unverified string `json:"unverified"`
	// EncryptedSubject is the outer Subject of encrypted messages.
	EncryptedSubject string `json:"encrypted_subject"`
	// Unsubscribe lists the purposes whose messages carry one-click
	// List-Unsubscribe (when EMAIL_UNSUBSCRIBE_BASE_URL is set).
	Unsubscribe []string `json:"unsubscribe"`
	// Limits bound deliveries per destination host (lower case; "*" for
	// the others). None by default.
	Limits map[string]Limit `json:"limits"`
	// Warmup, when its Identity is set, caps the messages sent per day.
	Warmup Warmup `json:"warmup"`
}

// DefaultPolicy is the policy of a tenant the policy file does not name:
// PHI over verified TLS only, also encrypted when the recipient has a
// key, held when verified TLS is impossible; no-phi over opportunistic TLS;
// List-Unsubscribe on marketing only.
func DefaultPolicy() Policy {
	return Policy{
		Encryption: EncryptIfKey, NoPHITLS: TLSNameOpportunistic, EncryptedTLS: TLSNameVerified,
		Unverified: UnverifiedHold, EncryptedSubject: DefaultEncryptedSubject,
		Unsubscribe: []string{PurposeMarketing.String()},
	}
}

// Validate lists every invalid field of p.
func (p Policy) Validate() error {
	var errs []error
	oneOf := func(field, v string, allowed ...string) {
		if !slices.Contains(allowed, v) {
			errs = append(errs, fmt.Errorf("%s must be one of %s (got %q)", field, strings.Join(allowed, ", "), v))
		}
	}
	oneOf("encryption", p.Encryption, EncryptIfKey, EncryptRequired, EncryptOff)
	oneOf("no_phi_tls", p.NoPHITLS, TLSNameOpportunistic, TLSNameVerified)
	oneOf("encrypted_tls", p.EncryptedTLS, TLSNameOpportunistic, TLSNameVerified)
	oneOf("unverified", p.Unverified, UnverifiedHold, UnverifiedDefer)
	if p.EncryptedSubject == "" || strings.ContainsAny(p.EncryptedSubject, "\r\n") || len(p.EncryptedSubject) > 200 {
		errs = append(errs, errors.New("encrypted_subject must be 1-200 bytes on one line"))
	}
	for dest, l := range p.Limits {
		if err := l.validate(dest); err != nil {
			errs = append(errs, err)
		}
	}
	if err := p.Warmup.validate(); err != nil {
		errs = append(errs, err)
	}
	for _, u := range p.Unsubscribe {
		if _, ok := ParsePurpose(u); !ok {
			errs = append(errs, fmt.Errorf("unsubscribe lists %q; purposes are treatment, operations, marketing", u))
		}
	}
	return errors.Join(errs...)
}

// Policies are the transport policies of every tenant.
type Policies struct {
	// Default applies to tenants Tenants does not name.
	Default Policy `json:"default"`
	// Tenants holds policies by tenant.
	Tenants map[string]Policy `json:"tenants"`
}

// DefaultPolicies gives every tenant DefaultPolicy.
func DefaultPolicies() Policies { return Policies{Default: DefaultPolicy()} }

// For returns tenant's policy.
func (ps Policies) For(tenant string) Policy {
	if p, ok := ps.Tenants[tenant]; ok {
		return p
	}
	return ps.Default
}

// Validate checks every policy.
func (ps Policies) Validate() error {
	var errs []error
	if err := ps.Default.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("default: %w", err))
	}
	for t, p := range ps.Tenants {
		if !bus.ValidToken(t) {
			errs = append(errs, fmt.Errorf("tenants: %q is not a tenant name", t))
		}
		if err := p.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("tenants.%s: %w", t, err))
		}
	}
	return errors.Join(errs...)
}

// Outgoing is a message ready to go, with how it must travel.
type Outgoing struct {
	// Message is the queued message. PHI.
	Message Message
	// TLS is the least transport security the next hop must offer.
	TLS TLSLevel
	// RequireTLS asks the next hop to keep TLS on every further hop
	// (REQUIRETLS, RFC 8689) when it offers the extension; set for PHI in
	// clear, which only ever leaves over verified TLS.
	RequireTLS bool
	// Key, when set, is the recipient's key the body is encrypted for.
	Key *RecipientKey
	// Subject is the outer Subject when Key is set.
	Subject string
	// Unsubscribe is true when the message carries List-Unsubscribe.
	Unsubscribe bool
}

// plan decides how m travels under p, given the recipient's key (nil when
// none is on record). hold is a Reason* code when m must be held without
// trying.
func (p Policy) plan(m Message, key *RecipientKey) (o Outgoing, hold string) {
	o = Outgoing{Message: m, TLS: TLSVerified, Unsubscribe: slices.Contains(p.Unsubscribe, m.Purpose.String())}
	if !m.Security.PHI() {
		if p.NoPHITLS == TLSNameOpportunistic {
			o.TLS = TLSOpportunistic
		}
		return o, ""
	}
	switch {
	case key != nil && p.Encryption != EncryptOff:
		o.Key, o.Subject = key, p.EncryptedSubject
		if p.EncryptedTLS == TLSNameOpportunistic {
			o.TLS = TLSOpportunistic
		}
	case p.Encryption == EncryptRequired:
		return o, ReasonNoRecipientKey
	default:
		o.RequireTLS = true
	}
	return o, ""
}

// holds reports whether a delivery that failed with reason is held under
// p rather than retried: the next hop cannot offer the TLS level o needs.
func (p Policy) holds(o Outgoing, reason string) bool {
	return o.TLS == TLSVerified && Unverifiable(reason) && p.Unverified == UnverifiedHold
}
