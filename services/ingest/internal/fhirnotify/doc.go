// Package fhirnotify reads FHIR R4 subscription notifications: the
// notification Bundle of the Subscriptions R5 Backport IG
// (https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/notifications.html),
// whose first entry is the subscription status, either as an R4
// `Parameters` resource (profile backport-subscription-status-r4,
// https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/StructureDefinition-backport-subscription-status-r4.html)
// or, as some R4 servers (athenahealth) still send it, as the R4B-style
// `SubscriptionStatus` resource of the earlier draft
// (https://hl7.org/fhir/R4B/subscriptionstatus.html).
//
// It also turns the full resources a notification carries into the
// normalised parts of a carenotify.events.v1.ClinicalEvent: an Appointment
// (https://hl7.org/fhir/R4/appointment.html) and its Patient
// (https://hl7.org/fhir/R4/patient.html), read with the R4 models of
// github.com/samply/golang-fhir-models. Those models drop `contained` and
// primitive extensions and reject codes outside the R4 value sets, so this
// package sniffs resourceType and ids from the raw JSON first and keeps the
// raw JSON of every resource.
//
// Every [Error] it returns is fit for a FHIR OperationOutcome and for logs:
// it names the element (as a FHIRPath-like expression) and the problem,
// never a value from the input, since values may be PHI.
package fhirnotify
