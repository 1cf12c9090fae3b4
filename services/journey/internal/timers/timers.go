package timers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/carenotify/carenotify/pkg/bus"
	"github.com/carenotify/carenotify/pkg/envelope"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/app"
)

const (
	// Stream is the name of the timers stream, bus.JourneyTimers.
	Stream = "JOURNEY_TIMERS"
	// FireFilter matches every fired timer.
	FireFilter = "journey.fire.>"
	// Kind is the envelope binding kind of a timer body.
	Kind = "journey-timer"
	// FiredTTL is how long a fired timer stays on the stream.
	FiredTTL = 7 * 24 * time.Hour

	publishTimeout = 5 * time.Second
)

// Sealer seals and opens timer bodies (an *envelope.Sealer).
type Sealer interface {
	Seal(ctx context.Context, plaintext []byte, b envelope.Binding) ([]byte, error)
	Open(ctx context.Context, sealed []byte, b envelope.Binding) ([]byte, error)
}

// Store sets, cancels and opens timers. It implements app.Timers.
type Store struct {
	js     jetstream.JetStream
	sealer Sealer
}

var _ app.Timers = (*Store)(nil)

// New returns a Store on js, sealing bodies with sealer. The
// JOURNEY_TIMERS stream must exist.
func New(js jetstream.JetStream, sealer Sealer) *Store {
	return &Store{js: js, sealer: sealer}
}

// payload is a timer's body before sealing.
type payload struct {
	Journey string `json:"journey"`
	Version string `json:"version"`
	Step    int    `json:"step"`
	// Event is the ClinicalEvent in protobuf wire format, without the
	// original EHR resource and the patient's business identifiers.
	Event []byte `json:"event"`
}

// id is a timer's binding id.
func id(journey, instance string, step int) string {
	return journey + "." + instance + "." + strconv.Itoa(step)
}

func subjects(tenant, journey, instance string, step int) (schedule, fire string, err error) {
	s := strconv.Itoa(step)
	if schedule, err = bus.Subject("journey", "timers", tenant, journey, instance, s); err != nil {
		return "", "", err
	}
	fire, err = bus.Subject("journey", "fire", tenant, journey, instance, s)
	return schedule, fire, err
}

// Schedule publishes t as a message schedule, replacing an earlier one for
// the same instance and step.
func (s *Store) Schedule(ctx context.Context, t app.Timer) error {
	schedule, fire, err := subjects(t.Tenant, t.Journey, t.Instance, t.Step)
	if err != nil {
		return fmt.Errorf("timer subject: %w", err)
	}
	ev := proto.CloneOf(t.Event)
	ev.Original, ev.OriginalContentType = nil, ""
	if p := ev.GetPatient(); p != nil {
		p.Identifiers = nil
	}
	evb, err := proto.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode timer event: %w", err)
	}
	body, err := json.Marshal(payload{Journey: t.Journey, Version: t.Version, Step: t.Step, Event: evb})
	if err != nil {
		return fmt.Errorf("encode timer: %w", err)
	}
	sealed, err := s.sealer.Seal(ctx, body, envelope.Binding{Tenant: t.Tenant, Kind: Kind, ID: id(t.Journey, t.Instance, t.Step)})
	if err != nil {
		return fmt.Errorf("seal timer: %w", err)
	}
	hdr := nats.Header{}
	hdr.Set(bus.HeaderTenant, t.Tenant)
	hdr.Set(bus.HeaderSource, "journey")
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	_, err = s.js.PublishMsg(ctx, &nats.Msg{Subject: schedule, Data: sealed, Header: hdr},
		jetstream.WithScheduleAt(t.Due), jetstream.WithScheduleTarget(fire), jetstream.WithScheduleTTL(FiredTTL))
	if err != nil {
		return fmt.Errorf("publish timer: %w", err)
	}
	return nil
}

// Cancel purges the pending schedules of an instance, and its fired timers
// not yet handled, and returns how many schedules it removed.
func (s *Store) Cancel(ctx context.Context, tenant, journey, instance string) (int, error) {
	schedules, err := bus.Subject("journey", "timers", tenant, journey, instance)
	if err != nil {
		return 0, fmt.Errorf("timer subject: %w", err)
	}
	fired, err := bus.Subject("journey", "fire", tenant, journey, instance)
	if err != nil {
		return 0, fmt.Errorf("timer subject: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	st, err := s.js.Stream(ctx, Stream)
	if err != nil {
		return 0, fmt.Errorf("timers stream: %w", err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(schedules+".>"))
	if err != nil {
		return 0, fmt.Errorf("timers stream info: %w", err)
	}
	n := len(info.State.Subjects)
	for _, filter := range []string{schedules + ".>", fired + ".>"} {
		if err := st.Purge(ctx, jetstream.WithPurgeSubject(filter)); err != nil {
			return 0, fmt.Errorf("purge timers: %w", err)
		}
	}
	return n, nil
}

// Pending returns the schedules of an instance that have not fired yet,
// with their step and due time, ordered by step.
func (s *Store) Pending(ctx context.Context, tenant, journey, instance string) ([]app.PendingTimer, error) {
	schedules, err := bus.Subject("journey", "timers", tenant, journey, instance)
	if err != nil {
		return nil, fmt.Errorf("timer subject: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	st, err := s.js.Stream(ctx, Stream)
	if err != nil {
		return nil, fmt.Errorf("timers stream: %w", err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(schedules+".>"))
	if err != nil {
		return nil, fmt.Errorf("timers stream info: %w", err)
	}
	var out []app.PendingTimer
	for subject := range info.State.Subjects {
		step, err := strconv.Atoi(subject[strings.LastIndexByte(subject, '.')+1:])
		if err != nil {
			continue
		}
		m, err := st.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // fired in between
		}
		if err != nil {
			return nil, fmt.Errorf("read timer: %w", err)
		}
		at, ok := strings.CutPrefix(m.Header.Get(jetstream.ScheduleHeader), "@at ")
		if !ok {
			continue
		}
		due, err := time.Parse(time.RFC3339, at)
		if err != nil {
			continue
		}
		out = append(out, app.PendingTimer{Step: step, Due: due})
	}
	slices.SortFunc(out, func(a, b app.PendingTimer) int { return a.Step - b.Step })
	return out, nil
}

// Remove purges the schedule of an instance at step, and its fired
// message not yet handled.
func (s *Store) Remove(ctx context.Context, tenant, journey, instance string, step int) error {
	schedule, fire, err := subjects(tenant, journey, instance, step)
	if err != nil {
		return fmt.Errorf("timer subject: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	st, err := s.js.Stream(ctx, Stream)
	if err != nil {
		return fmt.Errorf("timers stream: %w", err)
	}
	for _, subject := range []string{schedule, fire} {
		if err := st.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
			return fmt.Errorf("purge timer: %w", err)
		}
	}
	return nil
}

// ErrNotTimer is returned by Open for a message that is not a fired timer
// of this service.
var ErrNotTimer = errors.New("not a journey timer")

// Open opens a fired timer: subject is its journey.fire.… subject and data
// its sealed body. Errors from the envelope (envelope.ErrUnknownKey, a
// failed integrity check) are returned wrapped; none carries PHI.
func (s *Store) Open(ctx context.Context, subject string, data []byte) (app.Timer, error) {
	tok := strings.Split(subject, ".")
	if len(tok) != 6 || tok[0] != "journey" || tok[1] != "fire" {
		return app.Timer{}, ErrNotTimer
	}
	tenant, journey, instance := tok[2], tok[3], tok[4]
	step, err := strconv.Atoi(tok[5])
	if err != nil || step < 0 {
		return app.Timer{}, ErrNotTimer
	}
	plain, err := s.sealer.Open(ctx, data, envelope.Binding{Tenant: tenant, Kind: Kind, ID: id(journey, instance, step)})
	if err != nil {
		return app.Timer{}, fmt.Errorf("open timer: %w", err)
	}
	var p payload
	if err := json.Unmarshal(plain, &p); err != nil || p.Journey != journey || p.Step != step {
		return app.Timer{}, ErrNotTimer
	}
	var ev eventsv1.ClinicalEvent
	if err := proto.Unmarshal(p.Event, &ev); err != nil || ev.GetTenant() != tenant {
		return app.Timer{}, ErrNotTimer
	}
	return app.Timer{Tenant: tenant, Journey: journey, Instance: instance, Version: p.Version, Step: step, Event: &ev}, nil
}
