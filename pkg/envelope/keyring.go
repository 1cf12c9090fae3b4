package envelope

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// KeySize is the size in bytes of every key: KEKs and DEKs are AES-256.
const KeySize = 32

const (
	keyFileSuffix   = ".key"
	primaryFileName = "primary"
	maxKeyFileSize  = 1 << 10
)

var kidRE = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// ValidKID reports whether kid is a valid key-encryption key id: 1 to 32 of
// [a-z0-9-].
func ValidKID(kid string) bool { return kidRE.MatchString(kid) }

// A Keyring holds the key-encryption keys (KEKs) and says which one, the
// primary, wraps new data keys. It is immutable; load a new one to pick up
// changes. A Keyring formats (fmt, slog) as its key ids, never key bytes.
type Keyring struct {
	primary  string
	keks     map[string]cipher.AEAD
	warnings []string
}

// LoadKeyring loads the keyring in dir: every "<kid>.key" file and the
// "primary" file (see the package documentation). Hidden files and files
// with other names are ignored, so a Kubernetes Secret volume loads as it
// is. It fails if the primary file is missing (the error then wraps
// fs.ErrNotExist), names a kid without a key file, or if any key file is
// malformed or writable by others. Key files readable by group or others
// load with a warning, see [Keyring.Warnings].
func LoadKeyring(dir string) (*Keyring, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load keyring: %w", err)
	}
	kr := &Keyring{keks: map[string]cipher.AEAD{}}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, keyFileSuffix) {
			continue
		}
		kid := strings.TrimSuffix(name, keyFileSuffix)
		key, warning, err := readKeyFile(dir, kid)
		if err != nil {
			return nil, fmt.Errorf("load keyring: %w", err)
		}
		aead, err := newAEAD(key)
		clear(key)
		if err != nil {
			return nil, fmt.Errorf("load keyring: key file %s: %w", name, err)
		}
		kr.keks[kid] = aead
		if warning != "" {
			kr.warnings = append(kr.warnings, warning)
		}
	}
	primary, err := readPrimary(dir)
	if err != nil {
		return nil, fmt.Errorf("load keyring: %w", err)
	}
	if _, ok := kr.keks[primary]; !ok {
		return nil, fmt.Errorf("load keyring: primary %q has no key file %s%s", primary, primary, keyFileSuffix)
	}
	kr.primary = primary
	return kr, nil
}

// readKeyFile reads and checks <dir>/<kid>.key. It returns the key, and a
// warning when the file is readable by group or others. Errors name the file
// but never hold its content.
func readKeyFile(dir, kid string) (key []byte, warning string, err error) {
	name := kid + keyFileSuffix
	if !ValidKID(kid) {
		return nil, "", fmt.Errorf("key file %q: invalid key id (want 1 to 32 of [a-z0-9-])", name)
	}
	path := filepath.Join(dir, name)
	fi, err := os.Stat(path) // follows the symlinks of a Kubernetes Secret volume
	if err != nil {
		return nil, "", fmt.Errorf("key file %s: %w", name, err)
	}
	switch mode := fi.Mode(); {
	case !mode.IsRegular():
		return nil, "", fmt.Errorf("key file %s: not a regular file", name)
	case mode.Perm()&0o002 != 0:
		return nil, "", fmt.Errorf("key file %s: writable by anyone (mode %04o)", name, mode.Perm())
	case mode.Perm()&0o077 != 0:
		warning = fmt.Sprintf("key file %s is readable by group or others (mode %04o); 0600 or 0400 is better", name, mode.Perm())
	}
	if fi.Size() > maxKeyFileSize {
		return nil, "", fmt.Errorf("key file %s: too large for a key", name)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("key file %s: %w", name, err)
	}
	defer clear(raw)
	key = make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
	n, err := base64.StdEncoding.Decode(key, bytes.TrimSpace(raw))
	if err != nil || n != KeySize {
		clear(key)
		// Neither the decoder's error nor the length is echoed: both would
		// say something about the content.
		return nil, "", fmt.Errorf("key file %s: want %d bytes in standard base64 on one line", name, KeySize)
	}
	return key[:KeySize], warning, nil
}

// readPrimary reads the kid in <dir>/primary.
func readPrimary(dir string) (string, error) {
	path := filepath.Join(dir, primaryFileName)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("missing primary file: %w", err)
	}
	if err != nil {
		return "", fmt.Errorf("primary file: %w", err)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return "", fmt.Errorf("primary file: writable by anyone (mode %04o)", fi.Mode().Perm())
	}
	if fi.Size() > maxKeyFileSize {
		return "", errors.New("primary file: too large for a key id")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("primary file: %w", err)
	}
	kid := string(bytes.TrimSpace(b))
	if !ValidKID(kid) {
		return "", errors.New("primary file: not a key id (want 1 to 32 of [a-z0-9-])")
	}
	return kid, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("want a %d-byte key", KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}

// Primary returns the id of the KEK that wraps new data keys.
func (k *Keyring) Primary() string { return k.primary }

// IDs returns the ids of every KEK in the keyring, sorted.
func (k *Keyring) IDs() []string {
	ids := make([]string, 0, len(k.keks))
	for id := range k.keks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Has reports whether the keyring holds the KEK kid.
func (k *Keyring) Has(kid string) bool {
	_, ok := k.keks[kid]
	return ok
}

// Warnings returns what LoadKeyring found acceptable but worth an
// operator's attention, such as key files readable by group or others.
// Services log them at start.
func (k *Keyring) Warnings() []string { return slices.Clone(k.warnings) }

// String describes the keyring by its key ids, never its key bytes.
func (k *Keyring) String() string {
	return fmt.Sprintf("envelope.Keyring{primary: %s, kids: %s}", k.primary, strings.Join(k.IDs(), ","))
}

// GoString is String, so %#v shows no key material either.
func (k *Keyring) GoString() string { return k.String() }

// LogValue logs the keyring as its key ids.
func (k *Keyring) LogValue() slog.Value {
	return slog.GroupValue(slog.String("primary", k.primary), slog.Any("kids", k.IDs()))
}

// wrapAD is the associated data that binds a wrapped DEK to its id and KEK.
func wrapAD(dekID, kid string) []byte {
	return []byte("cn-dek|" + dekID + "|" + kid)
}

// wrap encrypts dek, the data key dekID, under the primary KEK.
func (k *Keyring) wrap(dekID string, dek []byte) WrappedKey {
	ct := k.keks[k.primary].Seal(nil, nil, dek, wrapAD(dekID, k.primary))
	return WrappedKey{KEK: k.primary, Ciphertext: ct}
}

// unwrap decrypts w, the data key dekID.
func (k *Keyring) unwrap(dekID string, w WrappedKey) ([]byte, error) {
	aead, ok := k.keks[w.KEK]
	if !ok {
		return nil, fmt.Errorf("data key %s is wrapped by KEK %q, not in the keyring: %w", dekID, w.KEK, ErrUnknownKey)
	}
	dek, err := aead.Open(nil, nil, w.Ciphertext, wrapAD(dekID, w.KEK))
	if err != nil || len(dek) != KeySize {
		clear(dek)
		return nil, fmt.Errorf("unwrap data key %s: %w", dekID, ErrTampered)
	}
	return dek, nil
}
