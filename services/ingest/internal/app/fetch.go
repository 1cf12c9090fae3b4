package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify"
)

// Reason codes of id-only fetching.
const (
	// ReasonFetchFailed: a focus resource could not be fetched from the
	// EHR (network, auth, size, redirect, address); the EHR should retry.
	ReasonFetchFailed = "fetch_failed"
	// ReasonFocusRefused: a focus names something ingest does not fetch
	// (another server, not a Type/id reference, an identifier that
	// matches no single resource); kept on EHR_DEAD.
	ReasonFocusRefused = "focus_refused"
)

// canFetch reports whether n's focus resources can be fetched for src:
// the source has a FHIR server and every focus is a literal reference or
// an identifier of a topic whose resource type is configured.
func (a *App) canFetch(src Source, n *fhirnotify.Notification) bool {
	if a.fhir == nil || !a.fhir.Configured(src.Name) {
		return false
	}
	for _, ev := range n.Events {
		if ev.FocusByIdentifier {
			if _, ok := a.fhir.TopicType(src.Name, n.Topic); !ok {
				return false
			}
		}
	}
	return true
}

// fetchFocus adds each event's focus resource, fetched from the source's
// FHIR server, to n's entries. Entries already in the Bundle are kept.
func (a *App) fetchFocus(ctx context.Context, src Source, n *fhirnotify.Notification) *Error {
	var fetched []fhirnotify.Entry
	for _, ev := range n.Events {
		var (
			raw  json.RawMessage
			err  error
			full string
		)
		switch {
		case ev.Focus != "":
			if _, ok := n.Resolve(ev.Focus); ok {
				continue
			}
			raw, err = a.fhir.Read(ctx, src.Name, ev.Focus)
			full = ev.Focus
		case ev.FocusByIdentifier:
			typ, _ := a.fhir.TopicType(src.Name, n.Topic)
			raw, err = a.fhir.SearchIdentifier(ctx, src.Name, typ, ev.FocusIdentifier.System, ev.FocusIdentifier.Value)
		default:
			continue
		}
		if err != nil {
			return fetchError(err)
		}
		var s struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		if err := json.Unmarshal(raw, &s); err != nil || s.ResourceType == "" {
			return &Error{Kind: KindUnavailable, Reason: ReasonFetchFailed, Code: "transient",
				Diagnostics: "a focus resource fetched from the source's FHIR server is not a resource; retry later",
				Err:         errors.New("fetched focus is not a resource")}
		}
		if full == "" {
			full = s.ResourceType + "/" + s.ID
		}
		fetched = append(fetched, fhirnotify.Entry{Index: -1, FullURL: full, ResourceType: s.ResourceType, ID: s.ID,
			Raw: raw, Path: s.ResourceType})
	}
	n.Entries = append(n.Entries, fetched...)
	return nil
}

// fetchError maps a FHIRReader error to an *Error.
func fetchError(err error) *Error {
	var r interface{ Refused() bool }
	if errors.As(err, &r) && r.Refused() {
		return &Error{Kind: KindUnprocessable, Reason: ReasonFocusRefused, Code: "not-supported",
			Diagnostics: "a notification event's focus cannot be fetched from this source's FHIR base URL " +
				"(another server, not a Type/id reference, or no single resource with its identifier); the notification was kept for replay",
			Err: fmt.Errorf("fetch focus: %w", err)}
	}
	return &Error{Kind: KindUnavailable, Reason: ReasonFetchFailed, Code: "transient",
		Diagnostics: "a focus resource could not be fetched from the source's FHIR server; retry the notification later",
		Err:         fmt.Errorf("fetch focus: %w", err)}
}

// mapNotification builds the candidate events of n's entries, turning a
// panic into a KindInternal error.
func (a *App) mapNotification(src Source, n *fhirnotify.Notification, received time.Time, res *Result) (events []candidate, err *Error) {
	defer func() {
		if r := recover(); r != nil {
			events, err = nil, &Error{Kind: KindInternal, Reason: ReasonInternal, Code: "exception",
				Diagnostics: "the notification could not be processed; it was kept for replay",
				Err:         fmt.Errorf("panic in mapNotification: %s", debug.Stack())}
		}
	}()
	// Only the resources events name as their focus changed; the others
	// (a Patient, additional context) are there to be referenced. When no
	// focus names an entry, every entry is taken as changed, except a
	// Patient beside other resources (the patient they reference).
	focusOnly := n.HasResolvedFocus()
	patients := focusOnly || onlyPatients(n.Entries)
	for _, e := range n.Entries {
		if focusOnly && !n.IsFocus(e) {
			res.Unmapped++
			continue
		}
		ev, ok, merr := eventFor(src, &n.Collection, e, received, notificationOrigin(n, e), patients)
		if merr != nil {
			return nil, fromNotify(merr)
		}
		if !ok {
			res.Unmapped++
			continue
		}
		events = append(events, ev)
	}
	return events, nil
}

// onlyPatients reports whether every entry is a Patient.
func onlyPatients(entries []fhirnotify.Entry) bool {
	for _, e := range entries {
		if e.ResourceType != "Patient" {
			return false
		}
	}
	return len(entries) > 0
}

// clockSkew widens an empty-payload search window backwards: the EHR's
// notification time and its resources' lastUpdated may differ a little.
// Resources found twice give the same event id and are stored once.
const clockSkew = time.Minute

// searchSince returns where the search for n's empty payload starts and
// the resource type to search; false when it cannot be searched: no FHIR
// server, no resource type for the topic, or no last-seen time (the
// first notification of a subscription without event timestamps).
func (a *App) searchSince(src Source, n *fhirnotify.Notification) (string, time.Time, bool) {
	if a.fhir == nil || !a.fhir.Configured(src.Name) {
		return "", time.Time{}, false
	}
	typ, ok := a.fhir.TopicType(src.Name, n.Topic)
	if !ok {
		return "", time.Time{}, false
	}
	var since time.Time
	if sub := subscriptionID(n); a.subs != nil && sub != "" {
		since = a.subs.lastSeen(src.Name, sub)
	}
	if since.IsZero() {
		for _, ev := range n.Events {
			if !ev.Timestamp.IsZero() && (since.IsZero() || ev.Timestamp.Before(since)) {
				since = ev.Timestamp
			}
		}
	}
	if since.IsZero() {
		return "", time.Time{}, false
	}
	return typ, since.Add(-clockSkew), true
}

// fetchSince adds the resources of type typ updated after since (and not
// after until, unless it is zero) to n's entries.
func (a *App) fetchSince(ctx context.Context, src Source, n *fhirnotify.Notification, typ string, since, until time.Time) *Error {
	found, err := a.fhir.SearchSince(ctx, src.Name, typ, since, until)
	if err != nil {
		// Nothing in the notification is refused here: the EHR retries.
		return &Error{Kind: KindUnavailable, Reason: ReasonFetchFailed, Code: "transient",
			Diagnostics: "the resources of an empty notification could not be searched on the source's FHIR server; retry the notification later",
			Err:         fmt.Errorf("search since last notification: %w", err)}
	}
	for _, raw := range found {
		var s struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		if err := json.Unmarshal(raw, &s); err != nil || s.ResourceType == "" {
			continue
		}
		n.Entries = append(n.Entries, fhirnotify.Entry{Index: -1, FullURL: s.ResourceType + "/" + s.ID,
			ResourceType: s.ResourceType, ID: s.ID, Raw: raw, Path: s.ResourceType})
	}
	return nil
}
