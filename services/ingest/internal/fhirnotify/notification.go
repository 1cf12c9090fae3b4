package fhirnotify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"time"
)

// Type is a notification's type, SubscriptionStatus.type.
type Type string

// The notification types of the Backport IG
// (https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/ValueSet-backport-notification-type.html).
const (
	TypeHandshake         Type = "handshake"
	TypeHeartbeat         Type = "heartbeat"
	TypeEventNotification Type = "event-notification"
	TypeQueryStatus       Type = "query-status"
	TypeQueryEvent        Type = "query-event"
)

// CarriesEvents reports whether notifications of type t may carry
// resources that changed (event-notification and query-event).
func (t Type) CarriesEvents() bool {
	return t == TypeEventNotification || t == TypeQueryEvent
}

func (t Type) known() bool {
	switch t {
	case TypeHandshake, TypeHeartbeat, TypeEventNotification, TypeQueryStatus, TypeQueryEvent:
		return true
	}
	return false
}

// Shape says which resource carried the subscription status.
type Shape string

const (
	// ShapeParameters is the R4 backport's Parameters resource.
	ShapeParameters Shape = "Parameters"
	// ShapeSubscriptionStatus is the R4B-style SubscriptionStatus resource.
	ShapeSubscriptionStatus Shape = "SubscriptionStatus"
)

// Version is the subscription framework a notification follows, told
// apart by its content.
type Version string

const (
	// VersionR4Backport: a history Bundle whose status is an R4 Parameters
	// resource (Subscriptions R5 Backport IG on FHIR R4).
	VersionR4Backport Version = "r4-backport"
	// VersionR4B: a history Bundle whose status is a SubscriptionStatus
	// resource: FHIR R4B (https://hl7.org/fhir/R4B/subscriptionstatus.html),
	// the early Backport/Argonaut drafts and athenahealth on R4.
	VersionR4B Version = "r4b"
	// VersionR5: a subscription-notification Bundle
	// (https://hl7.org/fhir/R5/subscriptionstatus.html); the resources it
	// carries follow R5 and are read from their raw JSON.
	VersionR5 Version = "r5"
)

// Payload says how much of the changed resources a notification carries
// (https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/payloads.html).
type Payload string

const (
	// PayloadNone: the notification type carries no events.
	PayloadNone Payload = "none"
	// PayloadEmpty: events, but no resources and no focus references.
	PayloadEmpty Payload = "empty"
	// PayloadIDOnly: events naming their focus, whose resources are not
	// in the Bundle; they have to be fetched.
	PayloadIDOnly Payload = "id-only"
	// PayloadFullResource: the changed resources are in the Bundle.
	PayloadFullResource Payload = "full-resource"
)

// Notification is a parsed subscription notification Bundle.
type Notification struct {
	// Collection holds the Bundle entries after the status that hold a
	// resource (Entries).
	Collection
	// Version is the subscription framework, from the Bundle's type and
	// the status resource.
	Version Version
	// Shape is the resource type of the status entry.
	Shape Shape
	// Type is the notification type.
	Type Type
	// Subscription is the Subscription reference, if given.
	Subscription string
	// Topic is the SubscriptionTopic canonical URL, if given.
	Topic string
	// EventsSinceStart is events-since-subscription-start, 0 if absent.
	EventsSinceStart int64
	// Timestamp is Bundle.timestamp; zero when absent or not an instant.
	Timestamp time.Time
	// Events are the notification events the status lists.
	Events []Event

	typeExpr string // where the type was read, for errors
}

// Event is one notification event of the status.
type Event struct {
	// Number is the event number, 0 if absent.
	Number int64
	// Timestamp is when the event happened; zero when absent.
	Timestamp time.Time
	// Focus is the reference to the resource that changed, if given.
	Focus string
	// FocusByIdentifier is true when the focus names the resource only by
	// business identifier, which no Bundle entry can match.
	FocusByIdentifier bool
	// FocusIdentifier is that business identifier. It may be PHI (an MRN
	// or accession number): never log it.
	FocusIdentifier Identifier
}

// Identifier is a business identifier (system and value).
type Identifier struct {
	System, Value string
}

func (e Event) hasFocus() bool { return e.Focus != "" || e.FocusByIdentifier }

// Entry is a Bundle entry holding a resource.
type Entry struct {
	// Index is the entry's position in Bundle.entry.
	Index int
	// FullURL is entry.fullUrl.
	FullURL string
	// ResourceType and ID are sniffed from the resource.
	ResourceType, ID string
	// Raw is the resource's JSON exactly as received.
	Raw json.RawMessage
	// Method is entry.request.method of a pushed Bundle, "" if absent.
	Method string
	// Path, when set, replaces the entry expression: a resource posted on
	// its own is located by its type ("Encounter.status").
	Path string
}

// Expression is the FHIRPath-like expression of the entry's resource.
func (e Entry) Expression() string {
	if e.Path != "" {
		return e.Path
	}
	return fmt.Sprintf("Bundle.entry[%d].resource", e.Index)
}

// Payload classifies the notification's payload.
func (n *Notification) Payload() Payload {
	if !n.Type.CarriesEvents() {
		return PayloadNone
	}
	focused, found := 0, 0
	for _, ev := range n.Events {
		if !ev.hasFocus() {
			continue
		}
		focused++
		if _, ok := n.Resolve(ev.Focus); ok {
			found++
		}
	}
	switch {
	case len(n.Entries) == 0 && focused == 0:
		return PayloadEmpty
	case len(n.Entries) == 0, focused > 0 && found == 0:
		return PayloadIDOnly
	}
	return PayloadFullResource
}

// EventFor returns the notification event whose focus is e, if any.
func (n *Notification) EventFor(e Entry) (Event, bool) {
	for _, ev := range n.Events {
		if ev.Focus != "" && matches(e, ev.Focus) {
			return ev, true
		}
	}
	return Event{}, false
}

// IsFocus reports whether entry e is the focus of one of the
// notification's events.
func (n *Notification) IsFocus(e Entry) bool {
	_, ok := n.EventFor(e)
	return ok
}

// HasResolvedFocus reports whether some event's focus is an entry of the
// Bundle. When none is (servers that leave focus out), every entry counts
// as changed.
func (n *Notification) HasResolvedFocus() bool {
	for _, ev := range n.Events {
		if _, ok := n.Resolve(ev.Focus); ok {
			return true
		}
	}
	return false
}

// Collection is the resources of a Bundle (or a single resource), which
// references are resolved against.
type Collection struct {
	// Entries are the entries that hold a resource, in Bundle order.
	Entries []Entry
	// R5 is true when the resources follow FHIR R5: they are read from
	// their raw JSON instead of the R4 models, which reject R5 codes and
	// shapes.
	R5 bool
}

// Resolve finds the entry a reference points to: by fullUrl, or by its
// "Type/id" tail (servers' base URLs in references and fullUrls differ).
func (n *Collection) Resolve(ref string) (Entry, bool) {
	if ref == "" {
		return Entry{}, false
	}
	for _, e := range n.Entries {
		if matches(e, ref) {
			return e, true
		}
	}
	return Entry{}, false
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// bundleJSON is the part of a Bundle read here.
type bundleJSON struct {
	ResourceType string      `json:"resourceType"`
	Type         string      `json:"type"`
	Timestamp    string      `json:"timestamp"`
	Entry        []entryJSON `json:"entry"`
}

type entryJSON struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
}

// sniffJSON is what is read from every resource before anything else.
type sniffJSON struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
}

// tokenRE matches what may be repeated from input in diagnostics: FHIR
// resource type names and codes, which are never PHI.
var (
	resourceTypeRE = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)
	codeRE         = regexp.MustCompile(`^[a-z][a-z-]{0,63}$`)
)

// ParseNotification parses a subscription notification Bundle: R4
// backport or R4B (type history) or R5 (type subscription-notification),
// setting Version from the content. A leading UTF-8 byte order mark is
// ignored. Every error is an *Error.
func ParseNotification(body []byte) (*Notification, error) {
	offset := 0
	if bytes.HasPrefix(body, utf8BOM) {
		body, offset = body[len(utf8BOM):], len(utf8BOM)
	}
	var b bundleJSON
	if err := json.Unmarshal(body, &b); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, malformed(ReasonMalformedJSON, IssueStructure, "",
				"the body is not valid JSON: syntax error at byte offset %d; expected a FHIR Bundle", syn.Offset+int64(offset))
		}
		if !isObject(body) {
			return nil, malformed(ReasonInvalidStructure, IssueStructure, "",
				"the body is JSON but not an object; expected a FHIR Bundle resource")
		}
		return nil, decodeError(body, reflect.TypeFor[bundleJSON](), "Bundle", ReasonInvalidStructure, true, err)
	}
	switch {
	case b.ResourceType == "":
		return nil, malformed(ReasonNotANotification, IssueRequired, "",
			"resourceType is missing; expected a FHIR Bundle (a subscription notification)")
	case b.ResourceType != "Bundle":
		return nil, unprocessable(ReasonNotANotification, IssueInvalid, "",
			"expected a subscription notification Bundle, got resourceType %s", safeToken(b.ResourceType, resourceTypeRE))
	case b.Type != "history" && b.Type != "subscription-notification":
		return nil, unprocessable(ReasonNotANotification, IssueInvalid, "Bundle.type",
			"a subscription notification Bundle has type history (R4 backport, R4B) or subscription-notification (R5), got %s", safeToken(b.Type, codeRE))
	case len(b.Entry) == 0:
		return nil, unprocessable(ReasonNotANotification, IssueRequired, "Bundle.entry",
			"a subscription notification Bundle has the subscription status (Parameters or SubscriptionStatus) as its first entry; the Bundle has no entries")
	}

	n := &Notification{Timestamp: parseInstant(b.Timestamp)}
	if b.Type == "subscription-notification" {
		n.Version, n.R5 = VersionR5, true
	}
	for i, e := range b.Entry {
		if len(e.Resource) == 0 || string(e.Resource) == "null" {
			if i == 0 {
				return nil, unprocessable(ReasonNotANotification, IssueRequired, "Bundle.entry[0].resource",
					"the first entry must hold the subscription status (Parameters or SubscriptionStatus)")
			}
			continue
		}
		var s sniffJSON
		if err := json.Unmarshal(e.Resource, &s); err != nil {
			expr := fmt.Sprintf("Bundle.entry[%d].resource", i)
			if !isObject(e.Resource) {
				return nil, malformed(ReasonInvalidStructure, IssueStructure, expr, "wrong JSON type: expected a resource (an object)")
			}
			return nil, decodeError(e.Resource, reflect.TypeFor[sniffJSON](), expr, ReasonInvalidStructure, true, err)
		}
		if s.ResourceType == "" {
			return nil, malformed(ReasonInvalidStructure, IssueRequired, fmt.Sprintf("Bundle.entry[%d].resource.resourceType", i),
				"every resource needs a resourceType")
		}
		if i == 0 {
			if err := n.readStatus(s.ResourceType, e.Resource); err != nil {
				return nil, err
			}
			continue
		}
		n.Entries = append(n.Entries, Entry{Index: i, FullURL: e.FullURL, ResourceType: s.ResourceType, ID: s.ID, Raw: e.Resource})
	}
	return n, nil
}

// readStatus reads the subscription status from the first entry.
func (n *Notification) readStatus(resourceType string, raw json.RawMessage) error {
	var err error
	switch {
	case resourceType == "SubscriptionStatus" && n.Version == VersionR5:
		n.Shape = ShapeSubscriptionStatus
		err = n.readSubscriptionStatusR5(raw)
	case n.Version == VersionR5:
		return unprocessable(ReasonNotANotification, IssueInvalid, "Bundle.entry[0].resource",
			"the first entry of an R5 subscription-notification Bundle holds a SubscriptionStatus, got %s",
			safeToken(resourceType, resourceTypeRE))
	case resourceType == "Parameters":
		n.Shape, n.Version = ShapeParameters, VersionR4Backport
		err = n.readParameters(raw)
	case resourceType == "SubscriptionStatus":
		n.Shape, n.Version = ShapeSubscriptionStatus, VersionR4B
		err = n.readSubscriptionStatus(raw)
	default:
		return unprocessable(ReasonNotANotification, IssueInvalid, "Bundle.entry[0].resource",
			"the first entry of a subscription notification holds the subscription status, a Parameters (R4 backport) or SubscriptionStatus resource, got %s",
			safeToken(resourceType, resourceTypeRE))
	}
	if err != nil {
		return err
	}
	if !n.Type.known() {
		return unprocessable(ReasonInvalidStatus, IssueInvalid, n.typeExpr,
			"unknown notification type: expected handshake, heartbeat, event-notification, query-status or query-event")
	}
	return nil
}

// safeToken returns s when it matches re (a type name or code that cannot
// be PHI) and a placeholder otherwise.
func safeToken(s string, re *regexp.Regexp) string {
	if re.MatchString(s) {
		return s
	}
	if s == "" {
		return "none"
	}
	return "another value"
}

// isObject reports whether b's first non-space byte opens a JSON object.
func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// parseInstant parses a FHIR instant or a full dateTime with a time zone;
// anything else gives the zero time.
func parseInstant(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
