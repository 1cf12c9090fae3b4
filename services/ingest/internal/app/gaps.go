package app

import (
	"context"
	"errors"
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
	gap, closed, err := a.subs.advance(ctx, src.Name, sub, n.Type, lo, hi, ehrTime(n), now)
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
	if err := a.recoverGap(ctx, src, sub, gap.From, gap.Until); err != nil {
		a.logger.WarnContext(ctx, "subscription gap open", "source", src.Name, "subscription", sub,
			"fromEvent", gap.From, "untilEvent", gap.Until, "err", err)
		return
	}
	if err := a.subs.resolveGap(ctx, src.Name, sub, gap.From, gap.Until, GapByEvents, a.now()); err != nil {
		a.logger.WarnContext(ctx, "save subscription state", "source", src.Name, "subscription", sub, "err", err)
	}
	a.metrics.SubscriptionGapRecovered(src.Name, GapByEvents)
	a.logger.InfoContext(ctx, "subscription gap recovered", "source", src.Name, "subscription", sub,
		"fromEvent", gap.From, "untilEvent", gap.Until)
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
