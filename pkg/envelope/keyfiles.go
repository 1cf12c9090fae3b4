package envelope

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// GenerateKEK writes a new random key-encryption key to dir (created with
// mode 0700 if missing) as "<kid>.key", mode 0600, and returns its kid,
// "k-<YYYYMMDD>-<6 random base32 letters or digits>". The new KEK is not
// primary; see [SetPrimary]. It never overwrites a file.
func GenerateKEK(dir string) (kid string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("generate kek: %w", err)
	}
	kid = newKID(time.Now())
	key := make([]byte, KeySize)
	_, _ = rand.Read(key) // never fails (crypto/rand crashes the program instead)
	data := base64.StdEncoding.AppendEncode(nil, key)
	data = append(data, '\n')
	clear(key)
	defer clear(data)
	if err := writeFile(dir, kid+keyFileSuffix, data, false); err != nil {
		return "", fmt.Errorf("generate kek: %w", err)
	}
	return kid, nil
}

func newKID(now time.Time) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	suffix := strings.ToLower(base32.StdEncoding.EncodeToString(b))[:6]
	return "k-" + now.UTC().Format(dayFmt) + "-" + suffix
}

// SetPrimary makes kid, whose key file in dir must be valid, the primary
// KEK, by replacing the "primary" file atomically (a temporary file renamed
// over it).
func SetPrimary(dir, kid string) error {
	key, _, err := readKeyFile(dir, kid)
	if err != nil {
		return fmt.Errorf("set primary: %w", err)
	}
	clear(key)
	if err := writeFile(dir, primaryFileName, []byte(kid+"\n"), true); err != nil {
		return fmt.Errorf("set primary: %w", err)
	}
	return nil
}

// RetireKEK deletes the key file of kid from dir. It refuses to retire the
// primary KEK. It cannot know whether a data key is still wrapped by kid:
// check [KEKUsage] first (carenotifyctl keys retire does), or data sealed
// under such data keys is lost.
func RetireKEK(dir, kid string) error {
	if !ValidKID(kid) {
		return fmt.Errorf("retire kek: invalid key id %q", kid)
	}
	primary, err := readPrimary(dir)
	switch {
	case err == nil && primary == kid:
		return fmt.Errorf("retire kek %s: it is the primary KEK; make another one primary first", kid)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("retire kek %s: %w", kid, err)
	}
	path := filepath.Join(dir, kid+keyFileSuffix)
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("retire kek %s: no key file %s%s", kid, kid, keyFileSuffix)
		}
		return fmt.Errorf("retire kek %s: %w", kid, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("retire kek %s: %w", kid, err)
	}
	return nil
}

// writeFile writes data to dir/name through a temporary file (mode 0600)
// and fsyncs it and dir. With replace it renames the file over name;
// without, it fails if name exists.
func writeFile(dir, name string, data []byte, replace bool) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	dst := filepath.Join(dir, name)
	if replace {
		if err := os.Rename(tmp, dst); err != nil {
			return err
		}
	} else {
		// A hard link fails if dst exists, so no key is ever overwritten.
		if err := os.Link(tmp, dst); err != nil {
			return err
		}
		_ = os.Remove(tmp)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
