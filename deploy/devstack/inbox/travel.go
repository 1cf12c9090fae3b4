package inbox

import (
	"bytes"
	"errors"
	"maps"
	"mime"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// Encryption values of Message.Encryption, as read from the received
// message's top-level Content-Type.
const (
	// EncryptionSMIME: application/pkcs7-mime; smime-type=enveloped-data
	// (RFC 8551).
	EncryptionSMIME = "smime"
	// EncryptionPGP: multipart/encrypted;
	// protocol="application/pgp-encrypted" (RFC 3156).
	EncryptionPGP = "pgp"
)

// DKIM results of Message.DKIM (RFC 8601 §2.7.1 names).
const (
	DKIMPass      = "pass"      // the first signature verifies
	DKIMFail      = "fail"      // it does not (altered message, wrong key)
	DKIMNone      = "none"      // the message carries no DKIM-Signature
	DKIMTempError = "temperror" // the key could not be looked up (not known to the inbox)
	DKIMPermError = "permerror" // the signature or key is malformed
)

// Delivery is how the sender (the email service) says the message left
// it: the transport of its delivery record, from its DELIVERY event.
// Only the sender knows whether it verified the inbox's certificate.
type Delivery struct {
	// TLSVersion is the version the sender negotiated, e.g. "TLS1.3".
	TLSVersion string `json:"tlsVersion"`
	// TLSVerified is true when the sender verified the certificate.
	TLSVerified bool `json:"tlsVerified"`
	// NextHop is the host name the sender delivered to.
	NextHop string `json:"nextHop"`
	// SMIME and PGP are true when the sender encrypted the body.
	SMIME bool `json:"smime"`
	PGP   bool `json:"pgp"`
	// RequireTLS is true when the sender asked for REQUIRETLS.
	RequireTLS bool `json:"requireTls"`
}

// SetDKIMKeys gives the inbox the DKIM public keys it checks signatures
// with: DNS TXT records by name ("<selector>._domainkey.<domain>"). The
// inbox does no DNS lookups; a signature by an unknown key is
// DKIMTempError. Call it before messages arrive.
func (in *Inbox) SetDKIMKeys(records map[string]string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.dkimKeys = records
}

// DKIMKeys returns the DKIM public keys given to SetDKIMKeys, so another
// inbox (e.g. a benchmark's own sink) can check the same signatures.
func (in *Inbox) DKIMKeys() map[string]string {
	return maps.Clone(in.keys())
}

// RecordDelivery attaches the sender's delivery report to the email whose
// X-Carenotify-Message-Id is messageID. A report that arrives before its
// message is kept and attached on arrival (up to the inbox's limit).
func (in *Inbox) RecordDelivery(messageID string, d Delivery) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i := range in.entries {
		if m := &in.entries[i].msg; m.Kind == KindEmail && carenotifyID(*m) == messageID {
			m.Delivery = &d
			in.notify()
			return
		}
	}
	if in.pending == nil {
		in.pending = map[string]Delivery{}
	}
	if len(in.pending) >= in.limit {
		clear(in.pending)
	}
	in.pending[messageID] = d
}

// carenotifyID is the email service's message id of m, "" when none.
func carenotifyID(m Message) string {
	if v := m.Headers["X-Carenotify-Message-Id"]; len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

// encryptionOf reads how a message's body is encrypted from its
// top-level Content-Type.
func encryptionOf(headers map[string][]string) string {
	ct := headers["Content-Type"]
	if len(ct) == 0 {
		return ""
	}
	mt, params, err := mime.ParseMediaType(ct[0])
	switch {
	case err != nil:
		return ""
	case (mt == "application/pkcs7-mime" || mt == "application/x-pkcs7-mime") && params["smime-type"] == "enveloped-data":
		return EncryptionSMIME
	case mt == "multipart/encrypted" && params["protocol"] == "application/pgp-encrypted":
		return EncryptionPGP
	}
	return ""
}

// checkDKIM verifies the first DKIM signature of raw with keys and
// returns its result and signing domain.
func checkDKIM(raw []byte, keys map[string]string) (result, domain string) {
	unknownKey := false
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if r, ok := keys[name]; ok {
				return []string{r}, nil
			}
			unknownKey = true
			return nil, errors.New("dkim key not known to the inbox")
		},
	})
	switch {
	case err != nil:
		return DKIMPermError, ""
	case len(vs) == 0:
		return DKIMNone, ""
	}
	v := vs[0]
	switch {
	case v.Err == nil:
		return DKIMPass, v.Domain
	case unknownKey || dkim.IsTempFail(v.Err):
		return DKIMTempError, v.Domain
	case dkim.IsPermFail(v.Err):
		return DKIMPermError, v.Domain
	}
	return DKIMFail, v.Domain
}
