// Package fhirnotify reads FHIR subscription notifications and FHIR REST
// pushes. Notifications are told apart by content: the R4 notification
// Bundle of the Subscriptions R5 Backport IG
// (https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/notifications.html),
// whose first entry is the subscription status, either as an R4
// `Parameters` resource (profile backport-subscription-status-r4,
// https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/StructureDefinition-backport-subscription-status-r4.html)
// or, as some R4 servers (athenahealth) still send it, as the R4B-style
// `SubscriptionStatus` resource of the earlier draft
// (https://hl7.org/fhir/R4B/subscriptionstatus.html), read as R4B; and the
// R5 subscription-notification Bundle
// (https://hl7.org/fhir/R5/subscription.html#notifications) with an R5
// SubscriptionStatus (https://hl7.org/fhir/R5/subscriptionstatus.html),
// whose resources are read from their raw JSON. [ParsePush] reads pushed
// resources and transaction, batch, collection and message Bundles
// (https://hl7.org/fhir/R4/http.html#transaction).
//
// It also turns the full resources a notification carries into the
// normalised parts of a carenotify.events.v1.ClinicalEvent: an Appointment
// (https://hl7.org/fhir/R4/appointment.html), an Encounter
// (https://hl7.org/fhir/R4/encounter.html, R5 status codes and class list
// too), a DiagnosticReport (https://hl7.org/fhir/R4/diagnosticreport.html)
// and their Patient (https://hl7.org/fhir/R4/patient.html). R4
// Appointments and Patients are read with the R4 models of
// github.com/samply/golang-fhir-models; those models drop `contained` and
// primitive extensions and reject codes outside the R4 value sets, so this
// package sniffs resourceType and ids from the raw JSON first, keeps the raw
// JSON of every resource, and reads Encounters, DiagnosticReports and every
// resource of an R5 Bundle with small hand-written types instead.
//
// Every [Error] it returns is fit for a FHIR OperationOutcome and for logs:
// it names the element (as a FHIRPath-like expression) and the problem,
// never a value from the input, since values may be PHI.
package fhirnotify
