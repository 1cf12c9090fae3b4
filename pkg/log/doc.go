// Package log is carenotify's logging layer: [log/slog] with JSON output,
// behind a handler that keeps protected health information (PHI) out of logs.
//
// Logs are copied, shipped and kept far longer and by far more people than
// patient data should be, so under the HIPAA Security Rule's technical
// safeguards, 45 CFR §164.312
// (https://www.ecfr.gov/current/title-45/subtitle-A/subchapter-C/part-164/subpart-C/section-164.312),
// they must not hold PHI. The identifiers below follow the de-identification
// list of §164.514(b)(2)
// (https://www.ecfr.gov/current/title-45/subtitle-A/subchapter-C/part-164/subpart-E/section-164.514).
//
// Services build their logger once, in main, with [New], and pass it down.
// Call sites log resource type, id and version, message id, tenant and the
// like, never a body, a FHIR resource or a rendered message, and wrap any
// value that is PHI in [PHI]. The handler is the safety net under that
// discipline, not a replacement for it.
//
// # Redaction rules
//
// [NewRedactingHandler] applies these rules before a record reaches the
// handler it wraps. Whatever it replaces becomes [Redacted], "[REDACTED]".
//
//  1. Keys. An attribute whose key names PHI has its value replaced, whatever
//     the value (a group included). Keys are compared whole, ignoring case,
//     '_' and '-', on their last '.'-separated segment, at every level of
//     nesting. The PHI key names are: email, phone, telecom, name, given,
//     family, firstname, lastname, fullname, birthdate, dob, address, mrn,
//     ssn, identifier, body, text, html, subject, to, recipient, patient,
//     contact. So "birthDate", "first_name" and "Email" are redacted while
//     "patient_ref", "subject_ref", "message_id" and "event_id" are not. A
//     group opened with WithGroup under such a name (such as "patient")
//     redacts every attribute added inside it.
//
//  2. Patterns. The record message, every string value (in groups, in values
//     returned by a [slog.LogValuer], in the Error text of an error, in byte
//     slices) and every key are scanned, and each of these is replaced:
//     email addresses; phone numbers in E.164 form ("+15551234567",
//     "+1 (555) 123-4567", "+44 20 7946 0958") or in the usual US forms
//     ("(555) 123-4567", "555-123-4567", "555.123.4567", "1-555-123-4567");
//     US social security numbers ("123-45-6789"). Timestamps, dates,
//     durations, host:port pairs, IP addresses, UUIDs and bare runs of digits
//     (Unix times, "5551234567") are left alone. Dates of birth are caught by
//     rule 1, by key, not by pattern.
//
//  3. Values of type [PHI] always log as [Redacted].
//
//  4. Attributes given to WithAttrs are redacted once, when it is called;
//     groups and WithGroup follow the same rules as top-level attributes.
//
// Other values (structs, maps, slices, pointers, types with MarshalJSON or
// MarshalText) are round-tripped through encoding/json and redacted as if
// their object keys were attribute keys, so a struct field tagged "email" is
// redacted too; the JSON output is unchanged otherwise. Numbers, booleans,
// times and durations pass through.
//
// Names, street addresses and other free text cannot be recognised by
// pattern: they are protected only by their key or by [PHI].
//
// The handler keeps every key, group and the attribute order, so it passes
// [testing/slogtest]. A record in which nothing needs redacting is passed on
// as it is, without allocating; any other record (including one holding an
// error or a LogValuer, which are always re-encoded) is copied first.
package log
