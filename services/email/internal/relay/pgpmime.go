package relay

import (
	"bytes"
	"mime"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/emersion/go-message/textproto"

	"github.com/carenotify/carenotify/services/email/internal/app"
)

// pgpConfig: AES-256 where the recipient's key allows it, no compression
// (RFC 9580 §13.4 warns of compression side channels), no signature.
var pgpConfig = &packet.Config{DefaultCipher: packet.CipherAES256, DefaultCompressionAlgo: packet.CompressionNone}

// pgpMIME encrypts inner (a MIME entity) for the binary OpenPGP public
// key, sets outer's Content-Type to multipart/encrypted;
// protocol="application/pgp-encrypted" and returns the body: the version
// part and the ASCII-armored encrypted part (RFC 3156 §4).
func pgpMIME(outer *textproto.Header, inner, key []byte) ([]byte, error) {
	list, err := openpgp.ReadKeyRing(bytes.NewReader(key))
	if err != nil || len(list) != 1 {
		return nil, &app.DeliveryError{Permanent: true, Reason: app.ReasonEncryption, Detail: "recipient OpenPGP key on record does not parse"}
	}
	var armored bytes.Buffer
	aw, err := armor.Encode(&armored, "PGP MESSAGE", nil)
	if err != nil {
		return nil, encryptError("pgp: armor")
	}
	pw, err := openpgp.Encrypt(aw, list, nil, &openpgp.FileHints{IsBinary: true}, pgpConfig)
	if err != nil {
		// go-crypto's errors name algorithms and key ids, not content.
		return nil, &app.DeliveryError{Permanent: true, Reason: app.ReasonEncryption, Detail: "pgp: " + err.Error()}
	}
	if _, err := pw.Write(inner); err != nil {
		return nil, encryptError("pgp: encrypt")
	}
	if err := pw.Close(); err != nil {
		return nil, encryptError("pgp: encrypt")
	}
	if err := aw.Close(); err != nil {
		return nil, encryptError("pgp: armor")
	}
	b := boundary()
	outer.Del("Content-Transfer-Encoding")
	outer.Del("Content-Disposition")
	outer.Set("Content-Type", mime.FormatMediaType("multipart/encrypted", map[string]string{
		"protocol": "application/pgp-encrypted", "boundary": b,
	}))
	var body bytes.Buffer
	body.WriteString("This is an OpenPGP/MIME encrypted message (RFC 3156).\r\n")
	body.WriteString("--" + b + "\r\n")
	body.WriteString("Content-Type: application/pgp-encrypted\r\n")
	body.WriteString("Content-Description: PGP/MIME version identification\r\n\r\n")
	body.WriteString("Version: 1\r\n\r\n")
	body.WriteString("--" + b + "\r\n")
	body.WriteString("Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n")
	body.WriteString("Content-Description: OpenPGP encrypted message\r\n")
	body.WriteString("Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n")
	body.Write(bytes.ReplaceAll(bytes.ReplaceAll(armored.Bytes(), []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n")))
	body.WriteString("\r\n--" + b + "--\r\n")
	return body.Bytes(), nil
}
