package fhirnotify

import (
	"encoding/json"
	"reflect"
)

// subscriptionStatusJSON is the R4B-style SubscriptionStatus resource
// (https://hl7.org/fhir/R4B/subscriptionstatus.html), as the earlier
// Backport draft and athenahealth send it inside R4 Bundles. Only what is
// read here is declared.
type subscriptionStatusJSON struct {
	Type                         string                  `json:"type"`
	EventsSinceSubscriptionStart *flexInt                `json:"eventsSinceSubscriptionStart"`
	NotificationEvent            []notificationEventJSON `json:"notificationEvent"`
	Subscription                 *referenceJSON          `json:"subscription"`
	Topic                        string                  `json:"topic"`
}

type notificationEventJSON struct {
	EventNumber *flexInt       `json:"eventNumber"`
	Timestamp   string         `json:"timestamp"`
	Focus       *referenceJSON `json:"focus"`
}

// subscriptionStatusR5JSON is the R5 SubscriptionStatus
// (https://hl7.org/fhir/R5/subscriptionstatus.html): the same element
// names as R4B for what is read here (type, eventsSinceSubscriptionStart
// and notificationEvent[].eventNumber/timestamp/focus, integer64 sent as a
// string or a number), without R4B's eventsInNotification. The R4 models
// have no SubscriptionStatus at all, so it is written by hand.
type subscriptionStatusR5JSON struct {
	Type                         string                  `json:"type"`
	EventsSinceSubscriptionStart *flexInt                `json:"eventsSinceSubscriptionStart"`
	NotificationEvent            []notificationEventJSON `json:"notificationEvent"`
	Subscription                 *referenceJSON          `json:"subscription"`
	Topic                        string                  `json:"topic"`
}

// readSubscriptionStatusR5 reads the status of an R5 notification.
func (n *Notification) readSubscriptionStatusR5(raw json.RawMessage) error {
	const base = "Bundle.entry[0].resource"
	var s subscriptionStatusR5JSON
	if err := json.Unmarshal(raw, &s); err != nil {
		return decodeError(raw, reflect.TypeFor[subscriptionStatusR5JSON](), base, ReasonInvalidStatus, true, err)
	}
	return n.applyStatus(subscriptionStatusJSON(s))
}

// readSubscriptionStatus reads the status from an R4B-style
// SubscriptionStatus resource.
func (n *Notification) readSubscriptionStatus(raw json.RawMessage) error {
	const base = "Bundle.entry[0].resource"
	var s subscriptionStatusJSON
	if err := json.Unmarshal(raw, &s); err != nil {
		return decodeError(raw, reflect.TypeFor[subscriptionStatusJSON](), base, ReasonInvalidStatus, true, err)
	}
	return n.applyStatus(s)
}

// applyStatus copies a decoded SubscriptionStatus into n.
func (n *Notification) applyStatus(s subscriptionStatusJSON) error {
	const base = "Bundle.entry[0].resource"
	if s.Type == "" {
		return unprocessable(ReasonInvalidStatus, IssueRequired, base+".type",
			"the subscription status has no type (handshake, heartbeat, event-notification, query-status or query-event)")
	}
	n.Type, n.typeExpr = Type(s.Type), base+".type"
	n.Topic = s.Topic
	if s.Subscription != nil {
		n.Subscription = s.Subscription.Reference
	}
	if s.EventsSinceSubscriptionStart != nil {
		n.EventsSinceStart = s.EventsSinceSubscriptionStart.n
	}
	for _, e := range s.NotificationEvent {
		ev := Event{Timestamp: parseInstant(e.Timestamp)}
		if e.EventNumber != nil {
			ev.Number = e.EventNumber.n
		}
		if e.Focus != nil {
			ev.Focus = e.Focus.Reference
			ev.FocusByIdentifier = ev.Focus == "" && e.Focus.Identifier != nil
			if ev.FocusByIdentifier {
				ev.FocusIdentifier = Identifier{System: e.Focus.Identifier.System, Value: e.Focus.Identifier.Value}
			}
		}
		n.Events = append(n.Events, ev)
	}
	return nil
}
