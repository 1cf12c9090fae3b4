package relay

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/emersion/go-msgauth/dkim"
)

// DKIMSignedHeaders are the header fields every DKIM signature covers
// (RFC 6376 §5.4.1, plus the one-click unsubscribe fields that RFC 8058
// §4 requires to be signed). A field listed but absent is signed as
// absent, so it cannot be added later without breaking the signature.
var DKIMSignedHeaders = []string{
	"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
	HeaderListUnsubscribe, HeaderListUnsubscribePost, HeaderMessageID, "Auto-Submitted",
}

// DKIM signs messages with a DKIM-Signature (RFC 6376), rsa-sha256 or
// ed25519-sha256 (RFC 8463) by the key's type, relaxed/relaxed.
type DKIM struct {
	domain, selector string
	key              crypto.Signer
}

var _ Signer = (*DKIM)(nil)

// NewDKIM returns a DKIM signer for domain and selector with key, an
// *rsa.PrivateKey (2048 bits or more recommended, 1024 at least) or an
// ed25519.PrivateKey.
func NewDKIM(domain, selector string, key crypto.Signer) (*DKIM, error) {
	if domain == "" || selector == "" {
		return nil, errors.New("dkim: domain and selector are required")
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 1024 {
			return nil, fmt.Errorf("dkim: RSA key of %d bits is too short (RFC 8301 requires 1024 or more)", k.N.BitLen())
		}
	case ed25519.PrivateKey:
	default:
		return nil, fmt.Errorf("dkim: unsupported key type %T (want RSA or Ed25519)", key)
	}
	return &DKIM{domain: domain, selector: selector, key: key}, nil
}

// LoadDKIMKey reads a PEM private key: PKCS#8 ("PRIVATE KEY", RSA or
// Ed25519) or PKCS#1 ("RSA PRIVATE KEY"). Errors never quote key bytes.
func LoadDKIMKey(file string) (crypto.Signer, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read dkim key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("dkim key %s holds no PEM block", file)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("dkim key %s: PEM block %q is not a private key (want PRIVATE KEY or RSA PRIVATE KEY)", file, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("dkim key %s: parse: %w", file, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("dkim key %s: unsupported key type %T", file, key)
	}
	return signer, nil
}

// Sign implements Signer: it returns msg with a DKIM-Signature header
// prepended.
func (d *DKIM) Sign(msg []byte) ([]byte, error) {
	var sig bytes.Buffer
	err := dkim.Sign(&sig, bytes.NewReader(msg), &dkim.SignOptions{
		Domain:                 d.domain,
		Selector:               d.selector,
		Signer:                 d.key,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             DKIMSignedHeaders,
	})
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return sig.Bytes(), nil
}
