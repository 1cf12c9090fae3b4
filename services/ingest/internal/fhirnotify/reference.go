package fhirnotify

import "strings"

// referenceJSON is a FHIR Reference, as much as is read here.
type referenceJSON struct {
	Reference  string          `json:"reference"`
	Identifier *identifierJSON `json:"identifier"`
}

type identifierJSON struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

// RefTail returns the "Type/id" a literal reference ends with, dropping
// any base URL and "/_history/<version>"; "" for references that have no
// such tail (urn:uuid:..., "#contained", "").
// See https://hl7.org/fhir/R4/references.html#literal.
func RefTail(ref string) string {
	if ref == "" || strings.HasPrefix(ref, "urn:") || strings.HasPrefix(ref, "#") {
		return ""
	}
	ref, _, _ = strings.Cut(ref, "?")
	ref = strings.TrimSuffix(ref, "/")
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	parts := strings.Split(ref, "/")
	if len(parts) < 2 {
		return ""
	}
	typ, id := parts[len(parts)-2], parts[len(parts)-1]
	if !resourceTypeRE.MatchString(typ) || id == "" {
		return ""
	}
	return typ + "/" + id
}

// RefType returns the resource type of a literal reference's tail, or "".
func RefType(ref string) string {
	typ, _, _ := strings.Cut(RefTail(ref), "/")
	return typ
}

// RefID returns the logical id of a literal reference's tail, or "".
func RefID(ref string) string {
	_, id, _ := strings.Cut(RefTail(ref), "/")
	return id
}

// matches reports whether ref points at entry e.
func matches(e Entry, ref string) bool {
	if ref == "" {
		return false
	}
	if e.FullURL == ref {
		return true
	}
	tail := RefTail(ref)
	if tail == "" {
		return false
	}
	return RefTail(e.FullURL) == tail || (e.ID != "" && e.ResourceType+"/"+e.ID == tail)
}
