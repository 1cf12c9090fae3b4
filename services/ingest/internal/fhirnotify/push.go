package fhirnotify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// Bundle types a FHIR push may send
// (https://hl7.org/fhir/R4/valueset-bundle-type.html), and the pseudo
// type of a resource posted on its own.
const (
	PushTransaction = "transaction"
	PushBatch       = "batch"
	PushCollection  = "collection"
	PushMessage     = "message"
	PushResource    = "resource"
)

// Push is a FHIR REST push: a Bundle (transaction, batch, collection,
// message) or one resource (https://hl7.org/fhir/R4/http.html#transaction,
// https://hl7.org/fhir/R4/http.html#create).
type Push struct {
	// Collection holds the entries that hold a resource.
	Collection
	// Type is the Bundle type, or PushResource for a single resource.
	Type string
	// Size is the number of Bundle entries (1 for a single resource).
	Size int
	// EntryErrors are the entries that could not be read at all (not an
	// object, no resourceType), by index.
	EntryErrors map[int]*Error
}

// pushBundleJSON is the part of a pushed Bundle read here.
type pushBundleJSON struct {
	ResourceType string          `json:"resourceType"`
	Type         string          `json:"type"`
	Entry        []pushEntryJSON `json:"entry"`
}

type pushEntryJSON struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
	Request  *struct {
		Method string `json:"method"`
	} `json:"request"`
}

// ParsePush parses a pushed body. pathType is the resource type named in
// the URL (POST [base]/Encounter), "" for POST [base]; a Bundle is read as
// a Bundle either way. Every error is an *Error.
func ParsePush(body []byte, pathType string) (*Push, error) {
	offset := 0
	if bytes.HasPrefix(body, utf8BOM) {
		body, offset = body[len(utf8BOM):], len(utf8BOM)
	}
	var s sniffJSON
	if err := json.Unmarshal(body, &s); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, malformed(ReasonMalformedJSON, IssueStructure, "",
				"the body is not valid JSON: syntax error at byte offset %d; expected a FHIR resource", syn.Offset+int64(offset))
		}
		if !isObject(body) {
			return nil, malformed(ReasonInvalidStructure, IssueStructure, "",
				"the body is JSON but not an object; expected a FHIR resource")
		}
		return nil, decodeError(body, reflect.TypeFor[sniffJSON](), "", ReasonInvalidStructure, true, err)
	}
	switch {
	case s.ResourceType == "":
		return nil, malformed(ReasonInvalidStructure, IssueRequired, "resourceType", "resourceType is missing; expected a FHIR resource")
	case s.ResourceType == "Bundle" && (pathType == "" || pathType == "Bundle"):
		return parsePushBundle(body)
	case pathType == "":
		return nil, unprocessable(ReasonInvalidResource, IssueInvalid, "resourceType",
			"POST [base] takes a Bundle (transaction, batch, collection or message), got %s; post a single resource to [base]/<its type>",
			safeToken(s.ResourceType, resourceTypeRE))
	case s.ResourceType != pathType:
		return nil, malformed(ReasonInvalidResource, IssueInvalid, "resourceType",
			"the resourceType (%s) differs from the type in the URL (%s)",
			safeToken(s.ResourceType, resourceTypeRE), safeToken(pathType, resourceTypeRE))
	}
	e := Entry{FullURL: "", ResourceType: s.ResourceType, ID: s.ID, Raw: json.RawMessage(body), Method: "POST", Path: s.ResourceType}
	return &Push{Type: PushResource, Size: 1, Collection: Collection{Entries: []Entry{e}}}, nil
}

func parsePushBundle(body []byte) (*Push, error) {
	var b pushBundleJSON
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, decodeError(body, reflect.TypeFor[pushBundleJSON](), "Bundle", ReasonInvalidStructure, true, err)
	}
	switch b.Type {
	case PushTransaction, PushBatch, PushCollection, PushMessage:
	case "history", "subscription-notification":
		return nil, unprocessable(ReasonInvalidResource, IssueNotSupported, "Bundle.type",
			"a %s Bundle is a subscription notification: post it to [base]/notifications", b.Type)
	default:
		return nil, unprocessable(ReasonInvalidResource, IssueNotSupported, "Bundle.type",
			"expected a transaction, batch, collection or message Bundle, got %s", safeToken(b.Type, codeRE))
	}
	p := &Push{Type: b.Type, Size: len(b.Entry), EntryErrors: map[int]*Error{}}
	for i, e := range b.Entry {
		expr := fmt.Sprintf("Bundle.entry[%d].resource", i)
		if len(e.Resource) == 0 || string(e.Resource) == "null" {
			continue // e.g. a DELETE or GET entry: nothing to map
		}
		var s sniffJSON
		if err := json.Unmarshal(e.Resource, &s); err != nil {
			if !isObject(e.Resource) {
				p.EntryErrors[i] = malformed(ReasonInvalidStructure, IssueStructure, expr, "wrong JSON type: expected a resource (an object)")
			} else {
				p.EntryErrors[i] = decodeError(e.Resource, reflect.TypeFor[sniffJSON](), expr, ReasonInvalidStructure, true, err)
			}
			continue
		}
		if s.ResourceType == "" {
			p.EntryErrors[i] = malformed(ReasonInvalidStructure, IssueRequired, expr+".resourceType", "every resource needs a resourceType")
			continue
		}
		method := ""
		if e.Request != nil {
			method = e.Request.Method
		}
		p.Entries = append(p.Entries, Entry{Index: i, FullURL: e.FullURL, ResourceType: s.ResourceType, ID: s.ID, Raw: e.Resource, Method: method})
	}
	return p, nil
}
