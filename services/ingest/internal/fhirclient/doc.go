// Package fhirclient reads resources from a source's FHIR API: a SMART
// Backend Services token source (client credentials with a
// private_key_jwt assertion, RS384/ES384;
// https://hl7.org/fhir/smart-app-launch/backend-services.html) and a
// guarded HTTP client that fetches only below the configured base URL,
// refuses redirects off it, refuses loopback, private and link-local
// addresses unless allowed, and bounds response size and time.
//
// Nothing here logs or returns in an error a token, a key, a URL or a
// resource id.
package fhirclient
