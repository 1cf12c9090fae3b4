package app

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/ingest/internal/hl7map"
)

// IdentifierSystems maps the assigning authorities of one HL7 v2 source
// (an EI-2 namespace id or CX-4.1, or an EI-3/CX-4.2 universal id) to the
// FHIR Identifier.system the same identifiers have on the tenant's FHIR
// server, so that an appointment, visit, order or patient is recognised
// whichever protocol names it. The names "@placer", "@filler", "@visit"
// and "@patient" give the system of identifiers sent without any
// assigning authority in that role.
type IdentifierSystems map[string]string

// fhirKeys returns the keys of a FHIR resource: its logical id on source
// first, then its business identifiers.
func fhirKeys(source, ref string, ids []*eventsv1.Identifier) []ResourceKey {
	keys := []ResourceKey{{Type: KeyLogical, Scope: source, Value: ref}}
	for _, id := range ids {
		keys = append(keys, ResourceKey{Type: KeyBusiness, Scope: id.GetSystem(), Value: id.GetValue()})
	}
	return dedupeKeys(keys)
}

// hl7Keys returns the business keys of HL7 v2 identifiers, in order.
func hl7Keys(systems IdentifierSystems, source string, ids []hl7map.EI) []ResourceKey {
	var keys []ResourceKey
	for _, e := range ids {
		keys = append(keys, ResourceKey{Type: KeyBusiness, Scope: hl7System(systems, source, e), Value: e.Value})
	}
	return dedupeKeys(keys)
}

// hl7System is the identifier system of an HL7 v2 identifier: the
// configured system of its namespace id or universal id; else
// "urn:oid:<id>" for an ISO universal id, "urn:uuid:<id>" for a UUID, the
// id itself for a URI; else the namespace id as sent. An identifier
// without any assigning authority gets the system configured for its role
// ("@placer", ...), else "urn:carenotify:hl7v2:<source>:<role>": it then
// matches only messages of the same source, never a FHIR identifier (whose
// systems are URIs of their own), and a placer id never matches a filler
// id.
func hl7System(systems IdentifierSystems, source string, e hl7map.EI) string {
	for _, k := range []string{e.Namespace, e.UniversalID} {
		if s, ok := systems[k]; ok && k != "" {
			return s
		}
	}
	if e.Namespace == "" && e.UniversalID == "" {
		if s, ok := systems["@"+e.Role]; ok {
			return s
		}
		return "urn:carenotify:hl7v2:" + source + ":" + e.Role
	}
	if e.UniversalID != "" {
		switch strings.ToUpper(e.UniversalIDType) {
		case "ISO":
			return "urn:oid:" + e.UniversalID
		case "UUID":
			return "urn:uuid:" + strings.ToLower(e.UniversalID)
		case "URI", "URL":
			return e.UniversalID
		}
	}
	if e.Namespace != "" {
		return e.Namespace
	}
	return e.UniversalID
}

func dedupeKeys(keys []ResourceKey) []ResourceKey {
	out := keys[:0:0]
	for _, k := range keys {
		if k.Value != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// contactHash is the SHA-256 of what decides patient.updated: email
// addresses (trimmed, lower-cased), phone numbers (digits and a leading
// +), the language's primary tag, and whether the patient died. Each list
// is sorted, so the order an EHR sends them in does not matter, and the
// same details sent by FHIR and by HL7 v2 give the same hash. It is stored
// only inside the sealed state.
func contactHash(emails, phones []string, language string, deceased bool) string {
	norm := func(in []string, f func(string) string) []string {
		var out []string
		for _, s := range in {
			if s = f(s); s != "" && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		slices.Sort(out)
		return out
	}
	es := norm(emails, func(s string) string { return strings.ToLower(strings.TrimSpace(s)) })
	ps := norm(phones, func(s string) string {
		var b strings.Builder
		for i, r := range strings.TrimSpace(s) {
			if r >= '0' && r <= '9' || r == '+' && i == 0 {
				b.WriteRune(r)
			}
		}
		return b.String()
	})
	lang, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(language)), "-")
	d := "alive"
	if deceased {
		d = "deceased"
	}
	sum := sha256.Sum256([]byte(strings.Join(es, "\x00") + "\x01" + strings.Join(ps, "\x00") + "\x01" + lang + "\x01" + d))
	return hex.EncodeToString(sum[:])
}
