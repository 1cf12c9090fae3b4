package relay

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"mime"
	nettextproto "net/textproto"
	"strings"

	"github.com/emersion/go-message/textproto"

	"github.com/carenotify/carenotify/services/email/internal/app"
)

// encryption says how a composed message was encrypted.
type encryption struct{ SMIME, PGP bool }

// protectedHeaders are the header fields copied into the encrypted part
// (Autocrypt-style protected headers, Content-Type parameter
// protected-headers="v1"): the recipient's client shows the real Subject
// from inside the encryption, the outer one is the policy's
// encrypted_subject.
var protectedHeaders = []string{"From", "To", "Subject", "Date", "Message-Id"}

// encrypt encrypts msg (a composed message, CRLF line endings) for key:
// its MIME body, whatever its structure, becomes the encrypted part, with
// the protected headers; the outer message keeps the other header fields
// (From, To, Date, Message-ID, List-Unsubscribe …) with Subject replaced
// by subject, and becomes application/pkcs7-mime (S/MIME, RFC 8551) or
// multipart/encrypted (PGP/MIME, RFC 3156).
func encrypt(msg []byte, key app.RecipientKey, subject string) ([]byte, encryption, error) {
	outer, inner, err := splitForEncryption(msg)
	if err != nil {
		return nil, encryption{}, err
	}
	outer.Set("Subject", mime.QEncoding.Encode("utf-8", subject))
	outer.Set("MIME-Version", "1.0")
	var body []byte
	var enc encryption
	switch key.Kind {
	case app.KeySMIME:
		body, err = smimeEnvelope(&outer, inner, key.Data)
		enc.SMIME = true
	case app.KeyPGP:
		body, err = pgpMIME(&outer, inner, key.Data)
		enc.PGP = true
	default:
		return nil, encryption{}, encryptError("unknown recipient key kind")
	}
	if err != nil {
		return nil, encryption{}, err
	}
	var out bytes.Buffer
	if err := textproto.WriteHeader(&out, outer); err != nil {
		return nil, encryption{}, encryptError("write outer header")
	}
	out.Write(body)
	return out.Bytes(), enc, nil
}

// splitForEncryption parses msg into the outer header (every field but
// the Content-* ones) and the inner entity: the Content-* fields, the
// protected headers and the body, CRLF line endings.
func splitForEncryption(msg []byte) (outer textproto.Header, inner []byte, err error) {
	r := bufio.NewReader(bytes.NewReader(msg))
	h, err := textproto.ReadHeader(r)
	if err != nil {
		return textproto.Header{}, nil, encryptError("read composed header")
	}
	var ih textproto.Header
	// Fields are written in the order they were added.
	for f := h.Fields(); f.Next(); {
		k := nettextproto.CanonicalMIMEHeaderKey(f.Key())
		if strings.HasPrefix(k, "Content-") {
			ih.Add(k, f.Value())
			f.Del()
		}
	}
	for _, k := range protectedHeaders {
		if v := h.Get(k); v != "" {
			ih.Add(k, v)
		}
	}
	ct := ih.Get("Content-Type")
	if ct == "" {
		ct = "text/plain; charset=us-ascii"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return textproto.Header{}, nil, encryptError("parse composed content type")
	}
	params["protected-headers"] = "v1"
	ih.Set("Content-Type", mime.FormatMediaType(mt, params))
	h.Del("MIME-Version")

	var b bytes.Buffer
	if err := textproto.WriteHeader(&b, ih); err != nil {
		return textproto.Header{}, nil, encryptError("write inner header")
	}
	body := msg[len(msg)-r.Buffered():]
	b.Write(body)
	return h, b.Bytes(), nil
}

// boundary returns a random MIME boundary.
func boundary() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return "cn-" + hex.EncodeToString(b[:])
}

// base64Lines returns data in base64, 76 characters per CRLF line (RFC
// 2045 §6.8).
func base64Lines(data []byte) []byte {
	enc := make([]byte, base64StdLen(len(data)))
	base64Std.Encode(enc, data)
	var out bytes.Buffer
	for len(enc) > 76 {
		out.Write(enc[:76])
		out.WriteString("\r\n")
		enc = enc[76:]
	}
	out.Write(enc)
	out.WriteString("\r\n")
	return out.Bytes()
}

// encryptError is a failure to encrypt: permanent, never retried in
// clear. detail names the step, never content.
func encryptError(detail string) error {
	return &app.DeliveryError{Permanent: true, Reason: app.ReasonEncryption, Detail: detail}
}
