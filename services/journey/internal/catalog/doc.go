// Package catalog loads the journeys and message templates that care-ops
// teams write as YAML files, checks them against each other, and renders
// templates for one event.
//
// [Load] reads a journeys directory and a templates directory and returns
// a new, immutable [Set], or a [*LoadError] listing every problem found in
// every file, each with its file and line, written for the care-ops person
// who edits the files. Nothing in a file is silently ignored: a field this
// version does not know is an error, and a field from the planned format
// that is not built yet (send windows, SMS, fallback, ...) is an error that
// says so. The formats are described in the service README and
// deploy/examples/README.md; the event names a journey may be triggered by
// are the ones in ARCHITECTURE.md, "Canonical event".
//
// Journey and template files are configuration: they never hold PHI, so
// load errors may quote them. Rendered messages do hold PHI; render errors
// name the template, the part and the position in the template only.
package catalog
