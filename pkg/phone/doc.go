// Package phone handles patients' phone numbers, which are PHI: E.164
// validation (ITU-T E.164: "+", a country code not starting with 0, at
// most 15 digits), normalising the numbers EHRs send, and the keyed hash
// under which services look a number up without storing it in clear.
//
// The hash is shared between the sms service (which learns a number from
// an inbound STOP) and the journey service (which knows which patients it
// texted at a number): both derive the hash key from the audit pseudonym
// key (pkg/audit), so no new secret is needed and nobody without that key
// can test a guessed number against a stored hash.
package phone
