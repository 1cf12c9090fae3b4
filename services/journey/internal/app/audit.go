package app

import (
	"context"
	"strconv"
	"time"

	"github.com/carenotify/carenotify/pkg/audit"
	eventsv1 "github.com/carenotify/carenotify/proto/gen/go/carenotify/events/v1"
	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

// Audit actions journey writes besides message.decided, consent.changed,
// journey.replanned and journey.wait.
const (
	// ActionJourneyStarted: a journey's trigger matched an event and its
	// when: condition held (or it has none). Object JourneyInstance.
	ActionJourneyStarted = "journey.started"
	// ActionJourneyPlanned: a wait step set its timer. Object
	// JourneyTimer (instance/step it resumes at), Detail "due".
	ActionJourneyPlanned = "journey.planned"
)

// journeyDetail is the Detail of a record about journey j's instance for
// ev: the journey, its version and the event ("appointment.booked"),
// plus the key-value pairs in kv. Values are ids and codes, never PHI.
func journeyDetail(ev *eventsv1.ClinicalEvent, j *catalog.Journey, kv ...string) map[string]string {
	d := make(map[string]string, 4+len(kv)/2)
	d["journey"] = j.ID
	if j.Version != "" {
		d["journeyVersion"] = j.Version
	}
	if j.Revision > 0 {
		d["journeyRevision"] = strconv.Itoa(j.Revision)
	}
	if ev.GetKind() != "" && ev.GetAction() != "" {
		d["event"] = ev.GetKind() + "." + ev.GetAction()
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			d[kv[i]] = kv[i+1]
		}
	}
	return d
}

// planned records that wait step i of j set a timer due at due, which
// resumes the instance at step i+1.
func (s *Service) planned(ctx context.Context, ev *eventsv1.ClinicalEvent, j *catalog.Journey, i int, due time.Time) error {
	instance := Instance(ev.GetTenant(), j.ID, ev.GetSubjectRef())
	obj := audit.Object{Type: "JourneyTimer", ID: instance + "/" + strconv.Itoa(i+1)}
	return s.record(ctx, ev, j, ActionJourneyPlanned, obj, audit.OutcomeSuccess, timerScheduled,
		"due", due.UTC().Format(time.RFC3339), "wait", string(j.Steps[i].Kind))
}
