package app

import (
	"testing"

	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

func TestAllowed(t *testing.T) {
	tests := []struct {
		name    string
		purpose catalog.Purpose
		give    ConsentState // "" means no record
		want    bool
	}{
		{name: "treatment, no record", purpose: catalog.PurposeTreatment, want: true},
		{name: "treatment, granted", purpose: catalog.PurposeTreatment, give: ConsentGranted, want: true},
		{name: "treatment, denied", purpose: catalog.PurposeTreatment, give: ConsentDenied, want: false},
		{name: "treatment, revoked", purpose: catalog.PurposeTreatment, give: ConsentRevoked, want: false},
		{name: "operations, no record", purpose: catalog.PurposeOperations, want: true},
		{name: "operations, revoked", purpose: catalog.PurposeOperations, give: ConsentRevoked, want: false},
		{name: "marketing, no record", purpose: catalog.PurposeMarketing, want: false},
		{name: "marketing, granted", purpose: catalog.PurposeMarketing, give: ConsentGranted, want: true},
		{name: "marketing, denied", purpose: catalog.PurposeMarketing, give: ConsentDenied, want: false},
		{name: "marketing, revoked", purpose: catalog.PurposeMarketing, give: ConsentRevoked, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := allowed(tt.purpose, Consent{State: tt.give}, tt.give != ""); got != tt.want {
				t.Errorf("allowed() = %t, want %t", got, tt.want)
			}
		})
	}
}
