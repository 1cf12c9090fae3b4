// Package server is ingest's HTTP transport: the FHIR subscription
// notification endpoint POST /fhir/{source}/notifications (a rest-hook
// channel endpoint, https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/channels.html#rest-hook).
//
// It authenticates the source, checks the media type and size, hands the
// body to the app and answers with a FHIR OperationOutcome
// (https://hl7.org/fhir/R4/operationoutcome.html). Errors become HTTP
// statuses in one place, [problem]; OperationOutcomes are rendered in one
// place, [writeOutcome].
package server
