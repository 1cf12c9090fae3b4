package app

import (
	"testing"

	"github.com/carenotify/carenotify/services/journey/internal/catalog"
)

func TestStepByID(t *testing.T) {
	j := &catalog.Journey{Steps: []catalog.Step{
		{Kind: catalog.StepSend, Template: "a"},
		{Kind: catalog.StepWaitFor, OnTimeout: []catalog.Step{{Kind: catalog.StepSend, Template: "t0"}}},
		{Kind: catalog.StepSend, Template: "b", Else: []catalog.Step{{Kind: catalog.StepSend, Template: "e0"}, {Kind: catalog.StepSend, Template: "e1"}}},
	}}
	tests := []struct {
		give, want string
		ok         bool
	}{
		{"0", "a", true}, {"2", "b", true}, {"1.timeout.0", "t0", true}, {"2.else.1", "e1", true},
		{"3", "", false}, {"-1", "", false}, {"1.timeout.1", "", false}, {"2.else", "", false},
		{"2.other.0", "", false}, {"x", "", false}, {"0.fallback", "", false},
	}
	for _, tt := range tests {
		st, ok := stepByID(j, tt.give)
		if ok != tt.ok || st.Template != tt.want {
			t.Errorf("stepByID(%q) = %q, %v; want %q, %v", tt.give, st.Template, ok, tt.want, tt.ok)
		}
	}
}
