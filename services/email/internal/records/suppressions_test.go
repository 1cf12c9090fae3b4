package records_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carenotify/carenotify/pkg/store/storetest"
	"github.com/carenotify/carenotify/services/email/internal/app"
	"github.com/carenotify/carenotify/services/email/internal/records"
)

func TestSuppressions(t *testing.T) {
	c := storetest.Client(t)
	s := records.NewSuppressions(c, []byte("0123456789abcdef0123456789abcdef"))
	ctx := t.Context()
	const address = "Zz.Canary.Patient@Example.org"

	h := s.Hash(tenant, address)
	if h != s.Hash(tenant, "  zz.canary.patient@example.org ") {
		t.Error("Hash() differs for a case and space variant of the same address")
	}
	if h == s.Hash("other-tenant", address) {
		t.Error("Hash() is the same for two tenants")
	}
	if other := records.NewSuppressions(c, []byte("another key of thirty-two bytes!")); other.Hash(tenant, address) == h {
		t.Error("Hash() does not depend on the key")
	}

	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	first := app.Suppression{
		Tenant: tenant, AddressHash: h, Reason: app.SuppressedHardBounce, Source: app.SourceDSN,
		MessageID: id1, ReportID: "<r1@relay.example.net>", Status: "5.1.1", At: at,
	}
	if added, err := s.Add(ctx, first); err != nil || !added {
		t.Fatalf("Add() = %v, %v", added, err)
	}
	// A second piece of evidence leaves the first.
	second := first
	second.Reason, second.Source, second.MessageID, second.At = app.SuppressedComplaint, app.SourceARF, id2, at.Add(time.Hour)
	if added, err := s.Add(ctx, second); err != nil || added {
		t.Fatalf("Add() again = %v, %v; want not added", added, err)
	}
	got, err := s.Get(ctx, tenant, h)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, got); diff != "" {
		t.Errorf("Get() (-want +got):\n%s", diff)
	}
	if _, err := s.Get(ctx, "other-tenant", h); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("Get() for another tenant = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, tenant, "not-a-hash"); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("Get(malformed) = %v, want ErrNotFound", err)
	}

	// Pages, oldest first.
	var want []string
	want = append(want, h)
	for i := range 4 {
		e := first
		e.AddressHash = s.Hash(tenant, fmt.Sprintf("p%d@example.org", i))
		e.At = at.Add(time.Duration(i+1) * time.Minute)
		if _, err := s.Add(ctx, e); err != nil {
			t.Fatal(err)
		}
		want = append(want, e.AddressHash)
	}
	var listed []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("List() does not end")
		}
		es, next, err := s.List(ctx, tenant, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			listed = append(listed, e.AddressHash)
		}
		if next == "" {
			break
		}
		if !records.ValidCursor(next) {
			t.Fatalf("cursor %q is not valid", next)
		}
		cursor = next
	}
	if diff := cmp.Diff(want, listed); diff != "" {
		t.Errorf("listed (-want +got):\n%s", diff)
	}

	if removed, err := s.Remove(ctx, tenant, h); err != nil || !removed {
		t.Fatalf("Remove() = %v, %v", removed, err)
	}
	if removed, err := s.Remove(ctx, tenant, h); err != nil || removed {
		t.Fatalf("Remove() again = %v, %v; want not removed", removed, err)
	}
	if _, err := s.Get(ctx, tenant, h); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("Get() after Remove = %v, want ErrNotFound", err)
	}
	es, _, err := s.List(ctx, tenant, "", 100)
	if err != nil || len(es) != 4 {
		t.Errorf("List() after Remove = %d entries, %v; want 4", len(es), err)
	}
	// Added again after removal: a new entry.
	if added, err := s.Add(ctx, second); err != nil || !added {
		t.Errorf("Add() after Remove = %v, %v", added, err)
	}

	// Redis never holds the address.
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		dump := k
		if typ := c.Type(ctx, k).Val(); typ == "hash" {
			dump += fmt.Sprint(c.HGetAll(ctx, k).Val())
		} else if typ == "zset" {
			dump += fmt.Sprint(c.ZRange(ctx, k, 0, -1).Val())
		}
		if strings.Contains(strings.ToLower(dump), "canary") {
			t.Errorf("Redis key %s holds the address", k)
		}
	}
}

func TestAddressFailure(t *testing.T) {
	tests := []struct {
		stage    string
		code     int
		enhanced string
		want     bool
	}{
		{app.StageRcpt, 550, "5.1.1", true},
		{"end of DATA", 550, "5.1.1", true},
		{"", 0, "5.1.10", true},
		{"", 0, "5.2.1", true},
		{app.StageRcpt, 550, "", true},
		{app.StageRcpt, 553, "", true},
		{app.StageRcpt, 554, "5.7.1", false}, // relaying denied
		{"end of DATA", 550, "5.7.1", false}, // content or policy
		{"", 0, "5.2.2", false},              // mailbox full
		{"", 0, "5.4.4", false},              // no route to host
		{"MAIL FROM", 553, "5.1.7", false},   // our sender address
		{"MAIL FROM", 550, "", false},
		{app.StageRcpt, 552, "", false},
		{app.StageRcpt, 550, "5.0.0", false},
	}
	for _, tt := range tests {
		if got := app.AddressFailure(tt.stage, tt.code, tt.enhanced); got != tt.want {
			t.Errorf("AddressFailure(%q, %d, %q) = %v, want %v", tt.stage, tt.code, tt.enhanced, got, tt.want)
		}
	}
	if !app.BounceSuppresses(app.SuppressPermanent, "", 0, "5.7.1") || app.BounceSuppresses(app.SuppressOff, app.StageRcpt, 550, "5.1.1") {
		t.Error("BounceSuppresses ignores its mode")
	}
}
