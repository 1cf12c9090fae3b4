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

// readSubscriptionStatus reads the status from a SubscriptionStatus
// resource.
func (n *Notification) readSubscriptionStatus(raw json.RawMessage) error {
	const base = "Bundle.entry[0].resource"
	var s subscriptionStatusJSON
	if err := json.Unmarshal(raw, &s); err != nil {
		return decodeError(raw, reflect.TypeFor[subscriptionStatusJSON](), base, ReasonInvalidStatus, true, err)
	}
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
		}
		n.Events = append(n.Events, ev)
	}
	return nil
}
