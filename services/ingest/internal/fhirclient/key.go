package fhirclient

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// signer signs JWS compact serialisations with one private key.
type signer struct {
	alg string
	kid string
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
}

// parseKey reads a PEM private key (PKCS#8, PKCS#1 RSA or SEC 1 EC) for
// alg RS384 (RSA, at least 2048 bits) or ES384 (EC P-384). Errors never
// quote the key.
func parseKey(pemBytes []byte, alg, kid string) (*signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("private key: no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, errors.New("private key: unsupported PEM block type")
	}
	if err != nil {
		return nil, errors.New("private key: not a readable RSA or EC key")
	}
	s := &signer{alg: alg, kid: kid}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if alg != "RS384" {
			return nil, fmt.Errorf("private key: an RSA key needs alg RS384, not %s", alg)
		}
		if k.N.BitLen() < 2048 {
			return nil, errors.New("private key: RSA keys need at least 2048 bits")
		}
		s.rsa = k
	case *ecdsa.PrivateKey:
		if alg != "ES384" {
			return nil, fmt.Errorf("private key: an EC key needs alg ES384, not %s", alg)
		}
		if k.Curve != elliptic.P384() {
			return nil, errors.New("private key: ES384 needs an EC P-384 key")
		}
		s.ec = k
	default:
		return nil, errors.New("private key: not an RSA or EC key")
	}
	return s, nil
}

// sign returns the JWS compact serialisation of claims.
func (s *signer) sign(claims any) (string, error) {
	hdr := map[string]string{"alg": s.alg, "typ": "JWT"}
	if s.kid != "" {
		hdr["kid"] = s.kid
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	digest := sha512.Sum384([]byte(input))
	var sig []byte
	if s.rsa != nil {
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.rsa, crypto.SHA384, digest[:])
		if err != nil {
			return "", fmt.Errorf("sign assertion: %w", err)
		}
	} else {
		r, ss, err := ecdsa.Sign(rand.Reader, s.ec, digest[:])
		if err != nil {
			return "", fmt.Errorf("sign assertion: %w", err)
		}
		// JWS ES384 signatures are R || S, each 48 bytes (RFC 7518 §3.4).
		sig = make([]byte, 96)
		r.FillBytes(sig[:48])
		ss.FillBytes(sig[48:])
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// VerifyJWS checks a compact JWS signed RS384 or ES384 by pub and returns
// its payload. It serves tests and tools; the token source never needs it.
func VerifyJWS(token string, pub crypto.PublicKey) ([]byte, error) {
	enc := base64.RawURLEncoding
	var parts [3]string
	rest := token
	for i := range 2 {
		j := indexByte(rest, '.')
		if j < 0 {
			return nil, errors.New("jws: want three parts")
		}
		parts[i], rest = rest[:j], rest[j+1:]
	}
	parts[2] = rest
	var hdr struct {
		Alg string `json:"alg"`
	}
	hb, err := enc.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &hdr) != nil {
		return nil, errors.New("jws: bad header")
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return nil, errors.New("jws: bad signature encoding")
	}
	digest := sha512.Sum384([]byte(parts[0] + "." + parts[1]))
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if hdr.Alg != "RS384" || rsa.VerifyPKCS1v15(k, crypto.SHA384, digest[:], sig) != nil {
			return nil, errors.New("jws: bad signature")
		}
	case *ecdsa.PublicKey:
		if hdr.Alg != "ES384" || len(sig) != 96 ||
			!ecdsa.Verify(k, digest[:], new(big.Int).SetBytes(sig[:48]), new(big.Int).SetBytes(sig[48:])) {
			return nil, errors.New("jws: bad signature")
		}
	default:
		return nil, errors.New("jws: unsupported key")
	}
	return enc.DecodeString(parts[1])
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
