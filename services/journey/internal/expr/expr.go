package expr

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
)

// Event is the triggering event as expressions see it, "event".
type Event struct {
	// Kind and Action, e.g. "appointment" and "booked".
	Kind   string `cel:"kind"`
	Action string `cel:"action"`
	// OccurredAt is when the change happened in the EHR (the zero
	// timestamp, 0001-01-01T00:00:00Z, when the EHR did not say).
	OccurredAt time.Time `cel:"occurred_at"`
	// Subject is the resource the event is about, e.g. "Appointment/123".
	Subject string `cel:"subject"`
	// Appointment holds the appointment facts; all zero values when the
	// event is not about an appointment.
	Appointment Appointment `cel:"appointment"`
}

// Appointment is "event.appointment".
type Appointment struct {
	Status      string    `cel:"status"`
	Start       time.Time `cel:"start"`
	End         time.Time `cel:"end"`
	ServiceType string    `cel:"service_type"`
}

// Patient is the patient as expressions see them, "patient": no names,
// identifiers, contact points or birth date.
type Patient struct {
	// Age in whole years at the event's time; -1 when the birth date is
	// missing or malformed. With a year-only (or year-month) birth date
	// it is the youngest age possible.
	Age int `cel:"age"`
	// Language is the preferred language as a BCP-47 tag, or "".
	Language string `cel:"language"`
	// HasEmail and HasPhone say whether a contact point exists.
	HasEmail bool `cel:"has_email"`
	HasPhone bool `cel:"has_phone"`
}

// Vars are the values of one evaluation.
type Vars struct {
	Event   Event
	Patient Patient
	Now     time.Time
}

// Type is the type an expression must have.
type Type int

// Result types.
const (
	Bool Type = iota
	Timestamp
)

func (t Type) celType() *cel.Type {
	if t == Timestamp {
		return cel.TimestampType
	}
	return cel.BoolType
}

func (t Type) String() string {
	if t == Timestamp {
		return "a time (timestamp)"
	}
	return "true or false (bool)"
}

// ErrEval is returned when an expression fails for one event (a timestamp
// overflow, a failed conversion, ...). The underlying CEL error may quote
// event values, so it is dropped.
var ErrEval = errors.New("expression failed for this event")

// costLimit bounds the work one evaluation may do.
const costLimit = 100_000

// env is the CEL environment, built once; it is immutable.
var env = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		ext.NativeTypes(ext.ParseStructTags(true), reflect.TypeFor[Event](), reflect.TypeFor[Appointment](), reflect.TypeFor[Patient]()),
		cel.Variable("event", cel.ObjectType("expr.Event")),
		cel.Variable("patient", cel.ObjectType("expr.Patient")),
		cel.Variable("now", cel.TimestampType),
	)
})

// Expr is a compiled, type-checked expression. It is safe for concurrent use.
type Expr struct {
	src string
	prg cel.Program
}

// Compile parses and type-checks src, which must have type want. The
// error is written for the person who edits the journey file: a
// *CompileError with CEL's messages, their position in the expression
// and what they mean (explain.go), without the source excerpt.
func Compile(src string, want Type) (*Expr, error) {
	e, err := env()
	if err != nil {
		return nil, fmt.Errorf("expression environment: %w", err)
	}
	ast, iss := e.Compile(src)
	if iss.Err() != nil {
		lines := strings.Split(src, "\n")
		ce := &CompileError{}
		for _, e := range iss.Errors() {
			line, col := max(e.Location.Line(), 1), e.Location.Column()+1
			text := ""
			if line <= len(lines) {
				text = lines[line-1]
			}
			ce.Issues = append(ce.Issues, Issue{Line: line, Column: col, Message: explain(e.Message, text, col)})
		}
		return nil, ce
	}
	if !ast.OutputType().IsExactType(want.celType()) {
		return nil, fmt.Errorf("the expression is %s, but it must be %s", typeName(ast.OutputType()), want)
	}
	prg, err := e.Program(ast, cel.CostLimit(costLimit))
	if err != nil {
		return nil, err
	}
	return &Expr{src: src, prg: prg}, nil
}

func typeName(t *cel.Type) string {
	switch {
	case t.IsExactType(cel.TimestampType):
		return "a time (timestamp)"
	case t.IsExactType(cel.DurationType):
		return "a duration"
	case t.IsExactType(cel.StringType):
		return "text (string)"
	case t.IsExactType(cel.IntType):
		return "a number (int)"
	case t.IsExactType(cel.BoolType):
		return "true or false (bool)"
	}
	return "of type " + t.String()
}

// String returns the source of the expression.
func (x *Expr) String() string { return x.src }

func (x *Expr) eval(v Vars) (any, error) {
	out, _, err := x.prg.Eval(map[string]any{"event": v.Event, "patient": v.Patient, "now": v.Now})
	if err != nil {
		return nil, ErrEval
	}
	return out.Value(), nil
}

// Bool evaluates a [Bool] expression.
func (x *Expr) Bool(v Vars) (bool, error) {
	out, err := x.eval(v)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, ErrEval
	}
	return b, nil
}

// Time evaluates a [Timestamp] expression.
func (x *Expr) Time(v Vars) (time.Time, error) {
	out, err := x.eval(v)
	if err != nil {
		return time.Time{}, err
	}
	switch t := out.(type) {
	case time.Time:
		return t, nil
	case types.Timestamp:
		return t.Time, nil
	}
	return time.Time{}, ErrEval
}
