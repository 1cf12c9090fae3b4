package catalog

import "slices"

// knownTriggers are the events a journey may start on, "<kind>.<action>",
// in the order of ARCHITECTURE.md's event table.
var knownTriggers = []string{
	"appointment.booked",
	"appointment.rescheduled",
	"appointment.cancelled",
	"appointment.noshow",
	"lab_result.final",
	"lab_result.amended",
	"encounter.admitted",
	"encounter.discharged",
	"patient.updated",
	"form.submitted",
}

// KnownTriggers returns the events a journey may start on, "<kind>.<action>".
func KnownTriggers() []string { return slices.Clone(knownTriggers) }

// IsKnownTrigger reports whether trigger is one of [KnownTriggers].
func IsKnownTrigger(trigger string) bool { return slices.Contains(knownTriggers, trigger) }
