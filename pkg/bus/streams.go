package bus

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream names.
const (
	StreamEHREvents = "EHR_EVENTS"
	StreamEHRDead   = "EHR_DEAD"
	StreamDelivery  = "DELIVERY"
	StreamAudit     = "AUDIT"
)

// Header names carried on carenotify messages. Values are never PHI.
const (
	HeaderTenant  = "Cn-Tenant"
	HeaderKind    = "Cn-Kind"
	HeaderAction  = "Cn-Action"
	HeaderSource  = "Cn-Source"
	HeaderReason  = "Cn-Reason"
	HeaderChannel = "Cn-Channel"
	// HeaderEventTime is when the originating EHR event was received (RFC 3339 nano).
	HeaderEventTime = "Cn-Event-Time"
)

// EHREvents is the stream of normalised clinical events,
// ehr.<tenant>.<kind>.<action>. Its duplicate window makes a re-sent
// notification with the same event id a no-op.
func EHREvents(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamEHREvents,
		Description: "Normalised clinical events (carenotify.events.v1.ClinicalEvent).",
		Subjects:    []string{"ehr.*.*.*"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      7 * 24 * time.Hour,
		Duplicates:  10 * time.Minute,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
}

// EHRDead keeps input that could not be parsed or mapped, with the reason
// in a header, for replay: dead.ehr.<tenant>.<source>. (ARCHITECTURE.md
// names it ehr.dead.…, but that overlaps EHR_EVENTS' ehr.*.*.* and
// JetStream refuses overlapping streams.)
func EHRDead(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamEHRDead,
		Description: "EHR input that could not be processed, kept for replay.",
		Subjects:    []string{"dead.ehr.>"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      30 * 24 * time.Hour,
		Duplicates:  2 * time.Minute,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
}

// Delivery is the stream of delivery status events,
// delivery.<tenant>.<channel>.<status>.
func Delivery(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamDelivery,
		Description: "Delivery status events (carenotify.delivery.v1.DeliveryEvent).",
		Subjects:    []string{"delivery.*.*.*"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      30 * 24 * time.Hour,
		Duplicates:  2 * time.Minute,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
}

// Audit is the stream of hash-chained audit records,
// audit.<tenant>.<service>, kept six years (the HIPAA documentation
// retention period, §164.316(b)(2)(i)).
// Message deletes and purges are denied, and JetStream refuses to lift
// either flag on an existing stream, so records leave only by age. (Deleting
// the whole stream stays possible; deny it with NATS permissions.) See
// pkg/audit.
func Audit(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamAudit,
		Description: "Hash-chained audit records (pkg/audit), one chain per tenant and service.",
		Subjects:    []string{"audit.*.*"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      6 * 365 * 24 * time.Hour,
		Duplicates:  2 * time.Minute,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		DenyDelete:  true,
		DenyPurge:   true,
	}
}

// Outbox is the work queue behind a channel's Send, outbox.<channel>.<tenant>.
// Each message is removed once a worker acknowledges it.
func Outbox(channel string, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        OutboxStream(channel),
		Description: "Work queue of the " + channel + " channel.",
		Subjects:    []string{"outbox." + channel + ".*"},
		Retention:   jetstream.WorkQueuePolicy,
		MaxAge:      7 * 24 * time.Hour,
		Duplicates:  2 * time.Minute,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
}

// OutboxStream is the stream name of a channel's outbox, e.g. OUTBOX_EMAIL.
func OutboxStream(channel string) string {
	b := []byte("OUTBOX_" + channel)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// EnsureStreams creates each stream or updates it to cfg; calling it again
// with the same configs changes nothing.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfgs ...jetstream.StreamConfig) error {
	for _, cfg := range cfgs {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("declare stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Subject joins tokens into a subject, checking each is a safe single token
// (letters, digits, '_' and '-'), so no caller can inject wildcards or dots.
func Subject(tokens ...string) (string, error) {
	n := 0
	for i, t := range tokens {
		if i > 0 && !tokenRE.MatchString(t) {
			return "", fmt.Errorf("invalid subject token %q", t)
		}
		n += len(t) + 1
	}
	b := make([]byte, 0, n)
	for i, t := range tokens {
		if i > 0 {
			b = append(b, '.')
		}
		b = append(b, t...)
	}
	return string(b), nil
}

// ValidToken reports whether s can be used as one subject token.
func ValidToken(s string) bool { return tokenRE.MatchString(s) }

// JourneyTimers is the stream of the journey service's durable timers.
// journey.timers.<tenant>.<journey>.<instance>.<step> holds one JetStream
// message schedule per pending wait (re-publishing on the same subject
// replaces it, purging the subject cancels it); when it is due the server
// publishes its body on journey.fire.<tenant>.<journey>.<instance>.<step>,
// in this same stream (a schedule's target must be one of its stream's
// subjects). Schedules may be months ahead, so there is no MaxAge: fired
// messages carry a per-message TTL instead.
func JourneyTimers(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              "JOURNEY_TIMERS",
		Description:       "Journey timers: message schedules (journey.timers.>) and the messages they fire (journey.fire.>).",
		Subjects:          []string{"journey.timers.>", "journey.fire.>"},
		Retention:         jetstream.LimitsPolicy,
		Duplicates:        2 * time.Minute,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		AllowMsgSchedules: true,
		AllowRollup:       true,
		AllowMsgTTL:       true,
	}
}
