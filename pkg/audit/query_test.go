package audit

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/bus"
)

func TestQuery(t *testing.T) {
	_, js := startAudit(t, bus.Audit(1))
	ctx := t.Context()
	base := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	journey := newTestWriter(t, js, "journey")
	email := newTestWriter(t, js, "email")
	// Ten records, one a minute: evt-0000..evt-0009, patients alternate,
	// services alternate, tenant south only for evt-0009.
	for i := range 10 {
		e := testEntry("north", []string{"pat-a", "pat-b"}[i%2], i)
		e.Time = base.Add(time.Duration(i) * time.Minute)
		w := journey
		if i%2 == 1 {
			w = email
			e.Actor = Actor{Type: ActorPerson, ID: "user-42"}
			e.Action = ActionMessageSent
		}
		if i == 9 {
			e.Tenant = "south"
		}
		if err := w.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		give    Filter
		want    []string
		wantErr bool
	}{
		{name: "all", give: Filter{}, want: []string{"evt-0000", "evt-0001", "evt-0002", "evt-0003", "evt-0004", "evt-0005", "evt-0006", "evt-0007", "evt-0008", "evt-0009"}},
		{name: "tenant", give: Filter{Tenant: "south"}, want: []string{"evt-0009"}},
		{name: "tenant and service", give: Filter{Tenant: "north", Service: "email"}, want: []string{"evt-0001", "evt-0003", "evt-0005", "evt-0007"}},
		{name: "patient", give: Filter{Tenant: "north", Patient: "pat-a", PseudonymKey: testPseudonymKey}, want: []string{"evt-0000", "evt-0002", "evt-0004", "evt-0006", "evt-0008"}},
		{name: "patient reference", give: Filter{Tenant: "north", PatientRef: PatientRef(testPseudonymKey, "north", "pat-b")}, want: []string{"evt-0001", "evt-0003", "evt-0005", "evt-0007"}},
		{name: "patient in another tenant", give: Filter{Tenant: "south", Patient: "pat-a", PseudonymKey: testPseudonymKey}},
		{name: "patient with the wrong key", give: Filter{Tenant: "north", Patient: "pat-a", PseudonymKey: make([]byte, 32)}},
		{name: "object", give: Filter{ObjectType: "ClinicalEvent", ObjectID: "evt-0004"}, want: []string{"evt-0004"}},
		{name: "actor", give: Filter{ActorID: "user-42", Tenant: "north"}, want: []string{"evt-0001", "evt-0003", "evt-0005", "evt-0007"}},
		{name: "action", give: Filter{Action: ActionPHIRead}, want: []string{"evt-0000", "evt-0002", "evt-0004", "evt-0006", "evt-0008"}},
		{name: "since and until", give: Filter{Since: base.Add(3 * time.Minute), Until: base.Add(6 * time.Minute)}, want: []string{"evt-0003", "evt-0004", "evt-0005"}},
		{name: "limit", give: Filter{Limit: 2}, want: []string{"evt-0000", "evt-0001"}},
		{name: "patient without tenant", give: Filter{Patient: "pat-a", PseudonymKey: testPseudonymKey}, wantErr: true},
		{name: "patient without key", give: Filter{Tenant: "north", Patient: "pat-a"}, wantErr: true},
		{name: "wildcard tenant", give: Filter{Tenant: ">"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := Query(ctx, js, tt.give)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Query() error = %v, wantErr %v", err, tt.wantErr)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.Object.ID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
		})
	}
}
