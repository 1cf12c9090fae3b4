package relay

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"sync"

	"github.com/emersion/go-message/textproto"
	"github.com/smallstep/pkcs7"

	"github.com/carenotify/carenotify/services/email/internal/app"
)

var (
	base64Std    = base64.StdEncoding
	base64StdLen = base64.StdEncoding.EncodedLen
)

// pkcs7Mu guards smallstep/pkcs7's package-level algorithm settings,
// which Encrypt reads: every call sets them and encrypts under the lock,
// so nothing else in the process can change them in between.
var pkcs7Mu sync.Mutex

// smimeEnvelope encrypts inner (a MIME entity) for the certificate der as
// CMS enveloped-data (RFC 5652 §6) with AES-256-CBC for the content and
// RSAES-OAEP for the content key (RFC 8551 §2.3, RFC 3560), sets outer's
// Content-* fields for application/pkcs7-mime; smime-type=enveloped-data
// and returns the body: the DER in base64.
//
// RSAES-OAEP takes its default parameters (SHA-1, MGF1 with SHA-1), the
// ones every OAEP-capable client reads: smallstep/pkcs7 v0.2.3 encodes only
// the hash in the parameters but masks with MGF1 over that same hash, so
// with SHA-256 the recipient (OpenSSL included) unmasks with MGF1-SHA-1 and
// fails. SHA-1 inside OAEP is not a collision use and remains sound for
// key transport. PKCS #1 v1.5 key transport is not used.
//
// AES-256-GCM is not used: in CMS it belongs in AuthEnvelopedData (RFC
// 5083), which smallstep/pkcs7 does not write, and enveloped-data with
// GCM is not read by OpenSSL or most mail clients.
func smimeEnvelope(outer *textproto.Header, inner, der []byte) ([]byte, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, &app.DeliveryError{Permanent: true, Reason: app.ReasonEncryption, Detail: "recipient certificate on record does not parse"}
	}
	pkcs7Mu.Lock()
	pkcs7.ContentEncryptionAlgorithm = pkcs7.EncryptionAlgorithmAES256CBC
	pkcs7.KeyEncryptionAlgorithm = pkcs7.OIDEncryptionAlgorithmRSAESOAEP
	pkcs7.KeyEncryptionHash = crypto.SHA1
	env, err := pkcs7.Encrypt(inner, []*x509.Certificate{cert})
	pkcs7Mu.Unlock()
	if err != nil {
		// pkcs7's errors name algorithms, not content.
		return nil, &app.DeliveryError{Permanent: true, Reason: app.ReasonEncryption, Detail: "smime: " + err.Error()}
	}
	outer.Set("Content-Type", `application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"`)
	outer.Set("Content-Disposition", `attachment; filename="smime.p7m"`)
	outer.Set("Content-Transfer-Encoding", "base64")
	outer.Set("Content-Description", "S/MIME Encrypted Message")
	return base64Lines(env), nil
}
