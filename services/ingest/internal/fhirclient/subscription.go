package fhirclient

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
)

// notSupportedOutcome reports whether body is an OperationOutcome with
// an issue of code not-supported.
func notSupportedOutcome(body []byte) bool {
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Code string `json:"code"`
		} `json:"issue"`
	}
	if json.Unmarshal(body, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		return false
	}
	for _, is := range oo.Issue {
		if is.Code == "not-supported" {
			return true
		}
	}
	return false
}

// capabilities caches what a server's CapabilityStatement says of
// Subscription/$events.
type capabilities struct {
	mu sync.Mutex
	// answered is set once the server answered (a statement, or an
	// error status: it has none to read).
	answered bool
	known    bool
	events   bool
}

// EventsSupported reads source's CapabilityStatement (GET <base>/metadata,
// once; a failed read is tried again next time) and reports whether it
// offers Subscription/$events. known is false when the statement does
// not say: it could not be read, or lists no Subscription resource.
func (r *Registry) EventsSupported(ctx context.Context, source string) (supported, known bool) {
	c, ok := r.clients[source]
	if !ok {
		return false, false
	}
	c.caps.mu.Lock()
	defer c.caps.mu.Unlock()
	if c.caps.answered {
		return c.caps.events, c.caps.known
	}
	body, err := c.Get(ctx, "metadata", nil)
	var se *StatusError
	if errors.As(err, &se) {
		c.caps.answered = true
	}
	if err != nil {
		return false, false
	}
	c.caps.answered = true
	var cs struct {
		ResourceType string `json:"resourceType"`
		Rest         []struct {
			Resource []struct {
				Type      string `json:"type"`
				Operation []struct {
					Name       string `json:"name"`
					Definition string `json:"definition"`
				} `json:"operation"`
			} `json:"resource"`
		} `json:"rest"`
	}
	if json.Unmarshal(body, &cs) != nil || cs.ResourceType != "CapabilityStatement" {
		return false, false
	}
	listed := false
	for _, rest := range cs.Rest {
		for _, res := range rest.Resource {
			if res.Type != "Subscription" {
				continue
			}
			listed = true
			for _, op := range res.Operation {
				if strings.TrimPrefix(op.Name, "$") == "events" || strings.HasSuffix(op.Definition, "/Subscription-events") {
					c.caps.known, c.caps.events = true, true
					return true, true
				}
			}
		}
	}
	if !listed {
		return false, false
	}
	c.caps.known = true
	return false, true
}

// ErrNoCriteriaType: the Subscription names no resource type to search.
var ErrNoCriteriaType = errors.New("subscription criteria name no resource type")

// SubscriptionType reads Subscription/<id> from source and returns the
// resource type its criteria are about: R4 `criteria` ("Appointment?…"),
// the R4 backport's filter criteria extension on `_criteria`, or R5
// `filterBy[].resourceType`.
func (r *Registry) SubscriptionType(ctx context.Context, source, subscriptionID string) (string, error) {
	c, ok := r.clients[source]
	if !ok {
		return "", errors.New("source has no fhir server")
	}
	if !idRE.MatchString(subscriptionID) {
		return "", ErrBadReference
	}
	body, err := c.Read(ctx, "Subscription/"+subscriptionID)
	if err != nil {
		return "", err
	}
	var sub struct {
		Criteria      string `json:"criteria"`
		CriteriaPrimE struct {
			Extension []struct {
				URL         string `json:"url"`
				ValueString string `json:"valueString"`
			} `json:"extension"`
		} `json:"_criteria"`
		FilterBy []struct {
			ResourceType string `json:"resourceType"`
		} `json:"filterBy"`
	}
	if err := json.Unmarshal(body, &sub); err != nil {
		return "", errors.New("subscription does not decode")
	}
	candidates := []string{sub.Criteria}
	for _, e := range sub.CriteriaPrimE.Extension {
		if strings.HasSuffix(e.URL, "/backport-filter-criteria") {
			candidates = append(candidates, e.ValueString)
		}
	}
	for _, f := range sub.FilterBy {
		candidates = append(candidates, f.ResourceType)
	}
	for _, s := range candidates {
		typ, _, _ := strings.Cut(s, "?")
		if typeRE.MatchString(typ) && !strings.Contains(s, "://") {
			return typ, nil
		}
	}
	return "", ErrNoCriteriaType
}
