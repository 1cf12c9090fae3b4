// Package fhirnotifytest gives tests real notification material: files of
// the shared test corpus (shared/corpus beside the repository) and
// notification Bundles built from them, like the test doubles of
// net/http/httptest. It is for tests only.
//
// The appointment notification is built from three corpus files: the
// Parameters-based status of the Inferno R4 backport example
// (fhir/subscriptions/r4-backport/inferno/empty_notification_bundle_example.json),
// the R4 example Appointment "2docs" (fhir/r4/Appointment/Appointment-2docs.json,
// status booked, participant Patient/example) and the R4 example Patient
// (fhir/r4/Patient/Patient-example.json, Peter James Chalmers), with a
// synthetic canary email address added to the Patient so tests can prove it
// never reaches a log. End-to-end tests in other modules cannot import this
// internal package; copy the approach (and the corpus-finding walk).
package fhirnotifytest
