package app

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPolicyPlan(t *testing.T) {
	key := &RecipientKey{Kind: KeySMIME, Data: []byte{1}}
	with := func(f func(*Policy)) Policy { p := DefaultPolicy(); f(&p); return p }
	type plan struct {
		TLS                      TLSLevel
		RequireTLS, Unsub, Crypt bool
		Subject, Hold            string
	}
	tests := []struct {
		name   string
		policy Policy
		give   Message
		key    *RecipientKey
		want   plan
	}{
		{name: "PHI treatment", policy: DefaultPolicy(), give: Message{Security: SecurityPHI, Purpose: PurposeTreatment},
			want: plan{TLS: TLSVerified, RequireTLS: true}},
		{name: "unspecified security is PHI", policy: DefaultPolicy(), give: Message{},
			want: plan{TLS: TLSVerified, RequireTLS: true}},
		{name: "no-phi marketing", policy: DefaultPolicy(), give: Message{Security: SecurityNoPHI, Purpose: PurposeMarketing},
			want: plan{TLS: TLSOpportunistic, Unsub: true}},
		{name: "no-phi, verified by policy", policy: with(func(p *Policy) { p.NoPHITLS = TLSNameVerified }), give: Message{Security: SecurityNoPHI},
			want: plan{TLS: TLSVerified}},
		{name: "PHI with a key: encrypted, still verified TLS", policy: DefaultPolicy(), give: Message{Security: SecurityPHI}, key: key,
			want: plan{TLS: TLSVerified, Crypt: true, Subject: DefaultEncryptedSubject}},
		{name: "PHI with a key, encrypted may go opportunistic by policy", policy: with(func(p *Policy) { p.EncryptedTLS = TLSNameOpportunistic }), give: Message{}, key: key,
			want: plan{TLS: TLSOpportunistic, Crypt: true, Subject: DefaultEncryptedSubject}},
		{name: "no-phi with a key is not encrypted", policy: DefaultPolicy(), give: Message{Security: SecurityNoPHI}, key: key,
			want: plan{TLS: TLSOpportunistic}},
		{name: "PHI with a key, encryption off", policy: with(func(p *Policy) { p.Encryption = EncryptOff }), give: Message{}, key: key,
			want: plan{TLS: TLSVerified, RequireTLS: true}},
		{name: "PHI, encryption required, no key", policy: with(func(p *Policy) { p.Encryption = EncryptRequired }), give: Message{},
			want: plan{TLS: TLSVerified, Hold: ReasonNoRecipientKey}},
		{name: "unsubscribe on treatment by policy", policy: with(func(p *Policy) { p.Unsubscribe = []string{"treatment"} }), give: Message{},
			want: plan{TLS: TLSVerified, RequireTLS: true, Unsub: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, hold := tt.policy.plan(tt.give, tt.key)
			got := plan{TLS: o.TLS, RequireTLS: o.RequireTLS, Unsub: o.Unsubscribe, Crypt: o.Key != nil, Subject: o.Subject, Hold: hold}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPolicyHolds(t *testing.T) {
	defer_ := DefaultPolicy()
	defer_.Unverified = UnverifiedDefer
	tests := []struct {
		name   string
		policy Policy
		level  TLSLevel
		reason string
		want   bool
	}{
		{"verified, no STARTTLS", DefaultPolicy(), TLSVerified, ReasonNoSTARTTLS, true},
		{"verified, bad certificate", DefaultPolicy(), TLSVerified, ReasonTLSUnverified, true},
		{"verified, MTA-STS", DefaultPolicy(), TLSVerified, ReasonMTASTS, true},
		{"verified, connection refused", DefaultPolicy(), TLSVerified, ReasonConnect, false},
		{"verified, 4xx", DefaultPolicy(), TLSVerified, ReasonSMTP4xx, false},
		{"opportunistic, bad handshake", DefaultPolicy(), TLSOpportunistic, ReasonTLSHandshake, false},
		{"policy defers", defer_, TLSVerified, ReasonNoSTARTTLS, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.holds(Outgoing{TLS: tt.level}, tt.reason); got != tt.want {
				t.Errorf("holds() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	p := Policy{Encryption: "maybe", NoPHITLS: "none", EncryptedTLS: "verified", Unverified: "drop", Unsubscribe: []string{"spam"}}
	err := Policies{Default: DefaultPolicy(), Tenants: map[string]Policy{"bad tenant": DefaultPolicy(), "acme": p}}.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	for _, want := range []string{`"bad tenant"`, "tenants.acme: encryption", "no_phi_tls", "unverified", "encrypted_subject", `"spam"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %q, want it to mention %s", err, want)
		}
	}
	if err := DefaultPolicies().Validate(); err != nil {
		t.Errorf("DefaultPolicies().Validate() = %v", err)
	}
}
