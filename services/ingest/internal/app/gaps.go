package app

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/carenotify/carenotify/services/ingest/internal/fhirnotify"
)

// subscriptionID is the logical id of n's Subscription, "" if unknown.
func subscriptionID(n *fhirnotify.Notification) string {
	id := fhirnotify.RefID(n.Subscription)
	if !fhirIDRE.MatchString(id) {
		return ""
	}
	return id
}

// fhirIDRE matches a FHIR logical id (https://hl7.org/fhir/R4/datatypes.html#id).
var fhirIDRE = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// carried returns the event numbers n carries, lo..hi; lo is hi+1 when
// it carries none but reports events since start.
func carried(n *fhirnotify.Notification) (lo, hi int64) {
	hi = n.EventsSinceStart
	for _, ev := range n.Events {
		if ev.Number <= 0 {
			continue
		}
		if lo == 0 || ev.Number < lo {
			lo = ev.Number
		}
		hi = max(hi, ev.Number)
	}
	if lo == 0 {
		lo = hi + 1
		if n.Type.CarriesEvents() && hi > 0 {
			// events-since-subscription-start is the number of the last
			// event of this notification.
			lo = hi - int64(len(n.Events)) + 1
			if len(n.Events) == 0 {
				lo = hi
			}
		}
	}
	return lo, hi
}

// ehrEarliest is the earliest time n states, on the EHR's clock: its
// first event's timestamp, else the Bundle's.
func ehrEarliest(n *fhirnotify.Notification) time.Time {
	var t time.Time
	for _, ev := range n.Events {
		if !ev.Timestamp.IsZero() && (t.IsZero() || ev.Timestamp.Before(t)) {
			t = ev.Timestamp
		}
	}
	if t.IsZero() {
		return n.Timestamp
	}
	return t
}

// ehrTime is the latest time n states, on the EHR's clock.
func ehrTime(n *fhirnotify.Notification) time.Time {
	t := n.Timestamp
	for _, ev := range n.Events {
		if ev.Timestamp.After(t) {
			t = ev.Timestamp
		}
	}
	return t
}

// track updates n's subscription state after n was handled, and on a gap
// counts it, logs it and tries to recover it with $events. Its failures
// are logged: the notification itself is stored.
func (a *App) track(ctx context.Context, src Source, n *fhirnotify.Notification) {
	sub := subscriptionID(n)
	if a.subs == nil || sub == "" {
		return
	}
	lo, hi := carried(n)
	now := a.now()
	gap, closed, err := a.subs.advance(ctx, src.Name, sub, n.Type, lo, hi, ehrEarliest(n), ehrTime(n), now)
	if err != nil {
		a.logger.WarnContext(ctx, "save subscription state", "source", src.Name, "subscription", sub, "err", err)
	}
	for range closed {
		a.metrics.SubscriptionGapRecovered(src.Name, GapByLate)
	}
	if gap == nil {
		return
	}
	a.metrics.SubscriptionGap(src.Name)
	a.logger.WarnContext(ctx, "subscription gap", "source", src.Name, "subscription", sub,
		"fromEvent", gap.From, "untilEvent", gap.Until, "lastEvent", gap.From-1, "receivedEvent", lo)
	if a.fhir == nil || !a.fhir.Configured(src.Name) {
		a.logger.WarnContext(ctx, "subscription gap open: no fhir server to recover from", "source", src.Name, "subscription", sub)
		return
	}
	method, err := a.recover(ctx, src, n, sub, *gap)
	if err != nil {
		a.logger.WarnContext(ctx, "subscription gap open", "source", src.Name, "subscription", sub,
			"fromEvent", gap.From, "untilEvent", gap.Until, "method", method, "err", err)
		return
	}
	if err := a.subs.resolveGap(ctx, src.Name, sub, gap.From, gap.Until, method, a.now()); err != nil {
		a.logger.WarnContext(ctx, "save subscription state", "source", src.Name, "subscription", sub, "err", err)
	}
	a.metrics.SubscriptionGapRecovered(src.Name, method)
	a.logger.InfoContext(ctx, "subscription gap recovered", "source", src.Name, "subscription", sub,
		"fromEvent", gap.From, "untilEvent", gap.Until, "method", method)
}

// recover recovers gap with $events, or by search when the EHR does not
// offer $events (its CapabilityStatement says so, or $events answers
// 404, 501 or an OperationOutcome not-supported). It returns the method
// used (or tried).
func (a *App) recover(ctx context.Context, src Source, n *fhirnotify.Notification, sub string, gap Gap) (string, error) {
	if supported, known := a.fhir.EventsSupported(ctx, src.Name); supported || !known {
		err := a.recoverGap(ctx, src, sub, gap.From, gap.Until)
		if err == nil {
			return GapByEvents, nil
		}
		var ns interface{ NotSupported() bool }
		if !errors.As(err, &ns) || !ns.NotSupported() {
			return GapByEvents, err
		}
		a.logger.InfoContext(ctx, "subscription $events not supported: recovering by search", "source", src.Name, "subscription", sub)
	}
	return GapBySearch, a.recoverBySearch(ctx, src, n, sub, gap)
}

// recoverBySearch searches the subscription's resource type (the topic's
// topic_types entry, else the Subscription's criteria) for resources
// last updated in the gap's window, widened by clockSkew on each side,
// and settles each like an empty notification's search results: only
// real transitions give events, what was seen before gives none. A
// search cannot tell which event numbers it covered: the gap counts as
// recovered when the search and every resource found succeeded.
func (a *App) recoverBySearch(ctx context.Context, src Source, n *fhirnotify.Notification, sub string, gap Gap) error {
	if gap.WindowStart.IsZero() {
		return errors.New("no EHR time before the gap is known: no window to search")
	}
	typ, ok := a.fhir.TopicType(src.Name, n.Topic)
	if !ok {
		t, err := a.fhir.SubscriptionType(ctx, src.Name, sub)
		if err != nil {
			return fmt.Errorf("resource type of the subscription: %w", err)
		}
		typ = t
	}
	var until time.Time
	if !gap.WindowEnd.IsZero() {
		until = gap.WindowEnd.Add(clockSkew)
	}
	m := &fhirnotify.Notification{Version: n.Version, Shape: n.Shape, Type: fhirnotify.TypeQueryEvent,
		Subscription: n.Subscription, Topic: n.Topic}
	if err := a.fetchSince(ctx, src, m, typ, gap.WindowStart.Add(-clockSkew), until); err != nil {
		return err
	}
	var res Result
	events, merr := a.mapNotification(src, m, a.now(), &res)
	if merr != nil {
		return merr
	}
	if perr := a.publishEvents(ctx, src, events, &res); perr != nil {
		return perr
	}
	a.logger.InfoContext(ctx, "subscription gap searched", "source", src.Name, "subscription", sub, "resourceType", typ,
		"found", len(m.Entries), "events", len(res.Events), "unchanged", res.Unchanged)
	return nil
}

// errGapNotCovered: $events answered without every missing event.
var errGapNotCovered = errors.New("$events did not return every missing event")

// recoverGap fetches events from..until with $events and stores them as
// if they had been notified.
func (a *App) recoverGap(ctx context.Context, src Source, sub string, from, until int64) error {
	body, err := a.fhir.Events(ctx, src.Name, sub, from, until)
	if err != nil {
		return err
	}
	n, res, perr := a.parse(body)
	if perr != nil {
		return perr
	}
	got := map[int64]bool{}
	for _, ev := range n.Events {
		got[ev.Number] = true
	}
	if res.Payload == fhirnotify.PayloadEmpty {
		return errors.New("$events answered with an empty payload")
	}
	if res.Payload == fhirnotify.PayloadIDOnly {
		if !a.canFetch(src, n) {
			return errors.New("$events payload cannot be fetched")
		}
		if ferr := a.fetchFocus(ctx, src, n); ferr != nil {
			return ferr
		}
	}
	events, merr := a.mapNotification(src, n, a.now(), &res)
	if merr != nil {
		return merr
	}
	if perr := a.publishEvents(ctx, src, events, &res); perr != nil {
		return perr
	}
	for i := from; i <= until; i++ {
		if !got[i] {
			return errGapNotCovered
		}
	}
	return nil
}

// CheckHeartbeats flags subscriptions whose last notification is older
// than twice their heartbeat period, calls $status for each when the
// source has a FHIR server, sets the overdue gauge and logs.
func (a *App) CheckHeartbeats(ctx context.Context) {
	if a.subs == nil {
		return
	}
	late, counts, err := a.subs.overdue(ctx, a.now())
	if err != nil {
		a.logger.WarnContext(ctx, "heartbeat check", "err", err)
	}
	for source, c := range counts {
		a.metrics.HeartbeatOverdue(source, c)
	}
	for _, st := range late {
		status := "not called"
		if a.fhir != nil && a.fhir.Configured(st.Source) {
			if _, err := a.fhir.Status(ctx, st.Source, st.Subscription); err != nil {
				status = "failed"
				a.logger.WarnContext(ctx, "subscription status call", "source", st.Source, "subscription", st.Subscription, "err", err)
			} else {
				status = "ok"
			}
		}
		a.logger.WarnContext(ctx, "subscription heartbeat overdue", "source", st.Source, "subscription", st.Subscription,
			"lastContact", st.LastContact, "lastEvent", st.LastEventNumber, "statusCall", status)
	}
}

// RunHeartbeats calls CheckHeartbeats every interval until ctx ends.
func (a *App) RunHeartbeats(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			a.CheckHeartbeats(ctx)
		}
	}
}

// SubscriptionStates returns the tracked states of source, of every
// source when source is "".
func (a *App) SubscriptionStates(source string) []SubscriptionState {
	if a.subs == nil {
		return []SubscriptionState{}
	}
	return a.subs.States(source)
}
