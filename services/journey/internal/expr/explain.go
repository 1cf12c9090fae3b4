package expr

import (
	"fmt"
	"regexp"
	"strings"
)

// Issue is one problem CEL found in an expression, at a 1-based line and
// column of the expression's source.
type Issue struct {
	Line, Column int
	// Message is CEL's message followed, where it helps, by what it
	// means for a journey file and how to fix it.
	Message string
}

// CompileError lists the issues of an expression that does not compile.
type CompileError struct{ Issues []Issue }

func (e *CompileError) Error() string {
	msgs := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		pos := fmt.Sprintf("column %d", is.Column)
		if is.Line > 1 {
			pos = fmt.Sprintf("line %d, column %d", is.Line, is.Column)
		}
		msgs[i] = pos + ": " + is.Message
	}
	return strings.Join(msgs, "; ")
}

// names is what each receiver in the environment has, for messages.
var names = map[string]string{
	"":                  "event, patient and now",
	"event":             "kind, action, occurred_at, subject and appointment",
	"event.appointment": "status, start, end and service_type",
	"patient":           "age, language, has_email and has_phone (conditions see no names, identifiers, contact points or birth date)",
}

var (
	undefinedFieldRE = regexp.MustCompile(`^undefined field '([^']*)'$`)
	undeclaredRE     = regexp.MustCompile(`^undeclared reference to '([^']*)'`)
	overloadRE       = regexp.MustCompile(`^found no matching overload for '([^']*)' applied to '\((.*)\)'$`)
	receiverRE       = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*$`)
	operators        = map[string]string{
		"_-_": "-", "_+_": "+", "_*_": "*", "_/_": "/", "_%_": "%", "_<_": "<", "_<=_": "<=", "_>_": ">", "_>=_": ">=",
		"_==_": "==", "_!=_": "!=", "_&&_": "&&", "_||_": "||", "!_": "!", "-_": "-",
	}
	celTypes = map[string]string{
		"timestamp": "a time (timestamp)", "google.protobuf.Timestamp": "a time (timestamp)",
		"duration": "a duration", "google.protobuf.Duration": "a duration",
		"int": "a number (int)", "uint": "a number (uint)", "double": "a number (double)",
		"string": "text (string)", "bool": "true or false (bool)",
	}
)

// explain adds to CEL's message, about the expression line src at the
// 1-based column, what it means and how to fix it.
func explain(msg, src string, column int) string {
	switch {
	case undefinedFieldRE.MatchString(msg):
		recv := ""
		if i := column - 1; i > 0 && i <= len(src) {
			if m := receiverRE.FindStringSubmatch(src[:i]); m != nil {
				recv = m[1]
			}
		}
		if has, ok := names[recv]; ok && recv != "" {
			return fmt.Sprintf("%s: %s has %s", msg, recv, has)
		}
		return msg + ": see the table of names in the journey service README"
	case undeclaredRE.MatchString(msg):
		m := undeclaredRE.FindStringSubmatch(msg)
		return fmt.Sprintf("unknown name '%s': a condition can use only %s", m[1], names[""])
	case overloadRE.MatchString(msg):
		m := overloadRE.FindStringSubmatch(msg)
		op, ok := operators[m[1]]
		if !ok {
			return fmt.Sprintf("%s: the function %s cannot take these values", msg, strings.Trim(m[1], "_"))
		}
		var args []string
		for _, a := range strings.Split(m[2], ",") {
			a = strings.TrimSpace(a)
			if t, ok := celTypes[a]; ok {
				a = t
			}
			args = append(args, a)
		}
		out := fmt.Sprintf("%s: '%s' cannot combine %s", msg, op, strings.Join(args, " and "))
		if strings.Contains(m[2], "timestamp") && (strings.Contains(m[2], "int") || strings.Contains(m[2], "string")) {
			out += `; write a span of time as duration("24h") and a time as timestamp("2026-01-02T15:04:05Z")`
		}
		return out
	case strings.HasPrefix(msg, "Syntax error: "):
		return "this is not a valid expression (" + strings.TrimPrefix(msg, "Syntax error: ") + "); check brackets, quotes and operators such as && and =="
	}
	return msg
}
