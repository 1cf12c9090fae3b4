package server_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/carenotify/carenotify/services/ingest/internal/app"
	"github.com/carenotify/carenotify/services/ingest/internal/config"
)

// noEventsCapability is a CapabilityStatement listing Subscription
// without the $events operation (only $status).
const noEventsCapability = `{"resourceType":"CapabilityStatement","status":"active","kind":"instance","fhirVersion":"4.0.1",
 "format":["json"],"rest":[{"mode":"server","resource":[{"type":"Subscription","interaction":[{"code":"read"}],
 "operation":[{"name":"status","definition":"http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status"}]}]}]}`

// TestGapRecoveredBySearch runs a subscription against a stand-in EHR
// without $events that skips event numbers twice and then stops sending
// heartbeats: both gaps are detected and recovered by searching the
// subscription's resource type over each gap's window, only the missing
// resources give events, the overdue heartbeat calls $status, and
// GET /status/subscriptions and /metrics show it all.
func TestGapRecoveredBySearch(t *testing.T) {
	tests := []struct {
		name string
		// noEvents is how $events is refused; 0 with capability.
		noEvents int
		// capability serves a CapabilityStatement without $events.
		capability bool
		// fromCriteria leaves the topic unmapped: the type comes from
		// the Subscription's criteria.
		fromCriteria bool
		wantEvents   int // $events calls
	}{
		{name: "$events 501", noEvents: http.StatusNotImplemented, wantEvents: 2},
		{name: "$events 404", noEvents: http.StatusNotFound, wantEvents: 2},
		{name: "$events OperationOutcome not-supported", noEvents: http.StatusBadRequest, wantEvents: 2},
		{name: "CapabilityStatement without $events", capability: true, noEvents: http.StatusNotImplemented, wantEvents: 0},
		{name: "type from the Subscription's criteria", noEvents: http.StatusNotImplemented, fromCriteria: true, wantEvents: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFHIREnv(t, "ES384", func(fs *config.FHIRServer) {
				fs.HeartbeatPeriod = "5m"
				if tt.fromCriteria {
					fs.TopicTypes = nil
				}
			})
			at := func(s string) time.Time {
				v, err := time.Parse(time.RFC3339, "2026-01-15T"+s+"Z")
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			e.ehr.mu.Lock()
			e.ehr.noEvents = tt.noEvents
			if tt.capability {
				e.ehr.metadata = []byte(noEventsCapability)
			}
			// What changed, and when: gap-2/3 between events 1 and 4,
			// gap-5/6 between 4 and 7, later-1 after everything.
			e.ehr.updated = map[string]time.Time{"gap-2": at("10:10:00"), "gap-3": at("10:20:00"),
				"gap-5": at("10:40:00"), "gap-6": at("10:50:00"), "later-1": at("12:30:00")}
			e.ehr.resources["Subscription/sub-s"] = []byte(`{"resourceType":"Subscription","id":"sub-s","status":"active",
 "criteria":"https://api.platform.athenahealth.com/fhir/r4/SubscriptionTopic/Appointment.schedule",
 "_criteria":{"extension":[{"url":"http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria","valueString":"Appointment?practitioner=Practitioner/1"}]},
 "channel":{"type":"rest-hook","endpoint":"https://carenotify.example/fhir/demo/notifications","payload":"application/fhir+json"}}`)
			e.ehr.mu.Unlock()

			for _, n := range []struct {
				number int
				at     string
			}{{1, "10:00:00"}, {4, "10:30:00"}, {7, "11:00:00"}} {
				body := statusBundleAt(t, "2026-01-15T"+n.at+"Z", "2026-01-15T"+n.at+"Z", "event-notification", "sub-s", n.number,
					statusEvent{number: n.number, focus: "Appointment/" + map[int]string{1: "2docs", 4: "gap-4", 7: "gap-7"}[n.number]})
				if r := e.post(t, demo(body)); r.status != http.StatusOK {
					t.Fatalf("event %d: status %d: %+v", n.number, r.status, r.outcome)
				}
			}
			var got []string
			for _, ev := range e.events(t) {
				got = append(got, ev.GetSubjectRef()+" "+ev.GetKind()+"."+ev.GetAction())
			}
			slices.Sort(got)
			want := []string{"Appointment/2docs appointment.booked", "Appointment/gap-2 appointment.booked", "Appointment/gap-3 appointment.booked",
				"Appointment/gap-4 appointment.booked", "Appointment/gap-5 appointment.booked", "Appointment/gap-6 appointment.booked",
				"Appointment/gap-7 appointment.booked"}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("EHR_EVENTS:\n%s\nwant (later-1 is outside every window):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			e.ehr.mu.Lock()
			q := e.ehr.searchQuery
			e.ehr.mu.Unlock()
			// The second gap's window, widened by a minute each side.
			if !strings.Contains(q, "_lastUpdated=gt2026-01-15T10%3A29%3A00Z") || !strings.Contains(q, "_lastUpdated=le2026-01-15T11%3A01%3A00Z") {
				t.Errorf("last search query %q, want the window 10:29..11:01", q)
			}
			if n := e.ehr.count("/fhir/Subscription/sub-s/$events"); n != tt.wantEvents {
				t.Errorf("$events called %d times, want %d", n, tt.wantEvents)
			}
			if tt.capability {
				if n := e.ehr.count("/fhir/metadata"); n != 1 {
					t.Errorf("metadata read %d times, want 1 (cached)", n)
				}
			}

			// The EHR goes quiet: more than twice the heartbeat period.
			e.clock.Advance(11 * time.Minute)
			e.app.CheckHeartbeats(t.Context())
			e.ehr.mu.Lock()
			statusCalls := e.ehr.statusCalls
			e.ehr.mu.Unlock()
			if statusCalls != 1 {
				t.Errorf("$status called %d times, want 1", statusCalls)
			}

			st := e.status(t, adminToken, "demo")
			if len(st) != 1 || st[0].Subscription != "sub-s" || st[0].LastEventNumber != 7 || !st[0].HeartbeatOverdue || len(st[0].Gaps) != 2 {
				t.Fatalf("status = %+v, want sub-s at 7, overdue, with 2 gaps", st)
			}
			for i, g := range st[0].Gaps {
				wantFrom := []int64{2, 5}[i]
				if g.From != wantFrom || g.Until != wantFrom+1 || g.Status != app.GapRecovered || g.Method != app.GapBySearch ||
					g.Recovered.IsZero() || !g.WindowStart.Equal(at([]string{"10:00:00", "10:30:00"}[i])) ||
					!g.WindowEnd.Equal(at([]string{"10:30:00", "11:00:00"}[i])) {
					t.Errorf("gap %d = %+v, want %d..%d recovered by search over its window", i, g, wantFrom, wantFrom+1)
				}
			}
			for name, want := range map[string]float64{
				"ingest_subscription_gaps_total":           2,
				"ingest_subscription_gaps_recovered_total": 2,
				"ingest_subscription_heartbeat_overdue":    1,
			} {
				if v := e.metric(t, name, "demo"); v != want {
					t.Errorf("%s{source=demo} = %v, want %v", name, v, want)
				}
			}
			logs := e.logs.String()
			for _, want := range []string{`"msg":"subscription gap recovered"`, `"method":"search"`, `"msg":"subscription gap searched"`,
				`"msg":"subscription heartbeat overdue"`, `"statusCall":"ok"`} {
				if !strings.Contains(logs, want) {
					t.Errorf("logs lack %s", want)
				}
			}
			if strings.Contains(logs, `"msg":"subscription gap open"`) {
				t.Error("a gap stayed open")
			}
			e.checkLogs(t)
		})
	}
}
