package fhirnotify

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// TimezoneExtension is the FHIR extension that names a time zone by its
// IANA code (valueCode, e.g. "America/Chicago"), on a Patient, an Address
// or a Location.
const TimezoneExtension = "http://hl7.org/fhir/StructureDefinition/timezone"

// zoneCode returns the IANA zone named by the first timezone extension in
// exts whose code is a zone this build knows, "" when none is. A code
// that is not a known zone is ignored, not guessed at.
func zoneCode(exts []fhir.Extension) string {
	for _, x := range exts {
		if x.Url == TimezoneExtension && x.ValueCode != nil {
			if z := knownZone(*x.ValueCode); z != "" {
				return z
			}
		}
	}
	return ""
}

// knownZone returns code when it names an IANA time zone ("UTC" included),
// else "". "Local" and "" are not zones.
func knownZone(code string) string {
	code = strings.TrimSpace(code)
	if code == "" || code == "Local" || len(code) > 64 {
		return ""
	}
	if _, err := time.LoadLocation(code); err != nil {
		return ""
	}
	return code
}

// patientZone is the time zone of r: its own timezone extension, else the
// one on its first current address (not old, period not ended) that has
// one.
func patientZone(r fhir.Patient, now time.Time) string {
	if z := zoneCode(r.Extension); z != "" {
		return z
	}
	for _, a := range r.Address {
		if a.Use != nil && *a.Use == fhir.AddressUseOld || ended(a.Period, now) {
			continue
		}
		if z := zoneCode(a.Extension); z != "" {
			return z
		}
	}
	return ""
}

// extensionJSON is an extension as read here (R4 and R5 alike).
type extensionJSON struct {
	URL       string  `json:"url"`
	ValueCode *string `json:"valueCode"`
}

// locationJSON is the part of a Location (R4 or R5) read for its zone.
type locationJSON struct {
	Extension []extensionJSON `json:"extension"`
	Address   *struct {
		Extension []extensionJSON `json:"extension"`
	} `json:"address"`
}

// LocationZone returns the time zone of the first Location among refs that
// the Bundle holds and that carries the timezone extension (on itself or
// its address); "" when none does. Locations not in the Bundle are not
// fetched.
func (n *Collection) LocationZone(refs []string) string {
	for _, ref := range refs {
		e, ok := n.Resolve(ref)
		if !ok || e.ResourceType != "Location" {
			continue
		}
		var l locationJSON
		if json.Unmarshal(e.Raw, &l) != nil {
			continue
		}
		exts := l.Extension
		if l.Address != nil {
			exts = append(exts, l.Address.Extension...)
		}
		for _, x := range exts {
			if x.URL == TimezoneExtension && x.ValueCode != nil {
				if z := knownZone(*x.ValueCode); z != "" {
					return z
				}
			}
		}
	}
	return ""
}

// isLocation reports whether a participant's actor is a Location, by its
// reference or declared type.
func isLocation(ref, typ string) bool {
	return ref != "" && (RefType(ref) == "Location" || typ == "Location")
}
