// Package server is ingest's HTTP transport: the FHIR subscription
// notification endpoint POST /fhir/{source}/notifications (a rest-hook
// channel endpoint, https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/channels.html#rest-hook),
// and FHIR REST push: POST /fhir/{source} for transaction, batch,
// collection and message Bundles (https://hl7.org/fhir/R4/http.html#transaction)
// and POST /fhir/{source}/{type} for one resource, answered with
// transaction-response/batch-response Bundles or an OperationOutcome.
//
// It authenticates the source, checks the media type and size, hands the
// body to the app and answers with a FHIR OperationOutcome
// (https://hl7.org/fhir/R4/operationoutcome.html). Errors become HTTP
// statuses in one place, [problem]; OperationOutcomes are rendered in one
// place, [writeOutcome] and [writeJSON].
package server
