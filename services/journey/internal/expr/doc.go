// Package expr compiles and evaluates the CEL expressions of journey files
// (https://github.com/google/cel-spec/blob/master/doc/langdef.md): the
// journey's "when:" condition and a step's "wait_until:" time.
//
// Expressions see a small typed environment, the minimum a condition
// needs: "event" (kind, action, occurred_at, subject, appointment),
// "patient" (age, language, has_email, has_phone: no names, identifiers,
// addresses or birth date) and "now". [Compile] type-checks an expression
// against it when the journey is loaded; the service README lists every
// field.
//
// The values an expression sees are PHI, so evaluation errors (which may
// quote them) are never logged or returned in clear: [ErrEval] is.
package expr
