package recipientkeys

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/services/email/internal/app"
)

// File name extensions LoadDir reads.
var (
	smimeExts = []string{".pem", ".crt", ".cer", ".der"}
	pgpExts   = []string{".asc", ".gpg", ".pgp"}
)

// LoadDir puts on record the keys in dir: one sub-directory per tenant,
// holding S/MIME certificates (*.pem, *.crt, *.cer, *.der) and OpenPGP
// public keys (*.asc, *.gpg, *.pgp), one per file. Each key is put on
// record for every address it names (certificate rfc822Name, OpenPGP user
// id); a certificate and an OpenPGP key naming the same address make one
// record, which replaces what was on record for that address. File names
// are free: they appear in errors and logs, so they must not be addresses
// (use e.g. patient-0042.pem). Other files are ignored; a file that does
// not hold a usable key is an error naming it, and nothing is put on
// record then. It returns the number of records put.
func LoadDir(ctx context.Context, dir string, reg app.KeyRegistry, now time.Time) (int, error) {
	records, err := readDir(dir, now)
	if err != nil {
		return 0, err
	}
	for _, p := range records {
		if err := reg.Put(ctx, p.tenant, p.address, p.rec); err != nil {
			return 0, err
		}
	}
	return len(records), nil
}

// CheckDir reads dir as LoadDir does and reports its errors, putting
// nothing on record (for -check-config). It returns the number of records
// LoadDir would put.
func CheckDir(dir string, now time.Time) (int, error) {
	records, err := readDir(dir, now)
	return len(records), err
}

// pending is one record read from a directory.
type pending struct {
	tenant, address string
	rec             app.KeyRecord
}

// readDir parses every key file of dir into records by tenant and address.
func readDir(dir string, now time.Time) (map[string]*pending, error) {
	tenants, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("recipient keys: %w", err)
	}
	records := map[string]*pending{}
	var errs []error
	for _, t := range tenants {
		if !t.IsDir() {
			continue
		}
		if !bus.ValidToken(t.Name()) {
			errs = append(errs, fmt.Errorf("recipient keys: directory %q is not a tenant name", t.Name()))
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, t.Name()))
		if err != nil {
			errs = append(errs, fmt.Errorf("recipient keys: %w", err))
			continue
		}
		for _, f := range files {
			ext := strings.ToLower(filepath.Ext(f.Name()))
			isSMIME, isPGP := slices.Contains(smimeExts, ext), slices.Contains(pgpExts, ext)
			if f.IsDir() || (!isSMIME && !isPGP) {
				continue
			}
			rel := filepath.Join(t.Name(), f.Name())
			b, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil {
				errs = append(errs, fmt.Errorf("recipient keys: %s: %w", rel, errors.Unwrap(err)))
				continue
			}
			var key []byte
			var addrs []string
			if isSMIME {
				key, addrs, err = ParseSMIME(b, now)
			} else {
				key, addrs, err = ParsePGP(b, now)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("recipient keys: %s: %w", rel, err))
				continue
			}
			for _, a := range addrs {
				p := records[t.Name()+"|"+a]
				if p == nil {
					p = &pending{tenant: t.Name(), address: a, rec: app.KeyRecord{UpdatedAt: now.UTC()}}
					records[t.Name()+"|"+a] = p
				}
				if isSMIME {
					p.rec.SMIME = key
				} else {
					p.rec.PGP = key
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return records, nil
}
