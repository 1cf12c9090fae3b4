package log

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
)

// NewRedactingHandler wraps next so that PHI never reaches it. It applies the
// rules in the package documentation to the record message and to every
// attribute, including those given to WithAttrs and those inside groups, and
// passes everything else (time, level, source, key order, group structure)
// through unchanged.
func NewRedactingHandler(next slog.Handler) slog.Handler {
	return &redactingHandler{next: next}
}

// redactingHandler is the [slog.Handler] behind [NewRedactingHandler]. It is
// immutable; WithAttrs and WithGroup return new handlers.
type redactingHandler struct {
	next slog.Handler
	// inPHIGroup is set once WithGroup has opened a group whose name is a PHI
	// key (such as "patient"): every attribute inside it is then redacted.
	inPHIGroup bool
}

var _ slog.Handler = (*redactingHandler)(nil)

// Enabled reports whether the wrapped handler handles records at level l.
func (h *redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

// Handle redacts r and passes it to the wrapped handler. When nothing needs
// redacting, r itself is passed on and nothing is allocated.
func (h *redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	msg, changed := redactString(r.Message)
	var buf [16]slog.Attr // redacted attributes, on the stack for typical records
	attrs := buf[:0]
	n := 0 // attributes seen so far
	r.Attrs(func(a slog.Attr) bool {
		ra, ok := redactAttr(a, h.inPHIGroup)
		if ok && !changed {
			// First change: take the n attributes before this one as they are.
			changed = true
			r.Attrs(func(b slog.Attr) bool {
				if len(attrs) == n {
					return false
				}
				attrs = append(attrs, b)
				return true
			})
		}
		if changed {
			attrs = append(attrs, ra)
		}
		n++
		return true
	})
	if !changed {
		return h.next.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, msg, r.PC)
	out.AddAttrs(attrs...)
	return h.next.Handle(ctx, out)
}

// WithAttrs redacts attrs once, now, and hands them to the wrapped handler.
func (h *redactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i], _ = redactAttr(a, h.inPHIGroup)
	}
	return &redactingHandler{next: h.next.WithAttrs(out), inPHIGroup: h.inPHIGroup}
}

// WithGroup opens a group in the wrapped handler. A group named after a PHI
// key redacts every attribute later added inside it.
func (h *redactingHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	key, _ := redactString(name)
	return &redactingHandler{
		next:       h.next.WithGroup(key),
		inPHIGroup: h.inPHIGroup || isPHIKey(name),
	}
}

// redactAttr applies the rules to a, resolving LogValuers on the way. all
// redacts the value whatever the key. It reports whether a changed.
func redactAttr(a slog.Attr, all bool) (slog.Attr, bool) {
	if a.Key == "" && a.Value.Kind() == slog.KindAny && a.Value.Any() == nil {
		return a, false // the empty Attr, which handlers ignore
	}
	key, changed := redactString(a.Key)
	if all || isPHIKey(a.Key) {
		// Not even resolved: LogValue is not called on PHI.
		return slog.Attr{Key: key, Value: slog.StringValue(Redacted)}, true
	}
	v := a.Value
	if v.Kind() == slog.KindLogValuer {
		v = v.Resolve()
		changed = true
	}
	if rv, ok := redactValue(v); ok {
		v = rv
		changed = true
	}
	return slog.Attr{Key: key, Value: v}, changed
}

// redactValue applies the value rules to a resolved value and reports
// whether it changed.
func redactValue(v slog.Value) (slog.Value, bool) {
	switch v.Kind() {
	case slog.KindString:
		if s, ok := redactString(v.String()); ok {
			return slog.StringValue(s), true
		}
	case slog.KindGroup:
		return redactGroup(v)
	case slog.KindAny:
		return redactAny(v)
	}
	return v, false
}

// redactGroup redacts the attributes of a group value, copying them only if
// one changes, so the group keeps its keys, order and nesting.
func redactGroup(v slog.Value) (slog.Value, bool) {
	attrs := v.Group()
	var out []slog.Attr
	for i, a := range attrs {
		ra, ok := redactAttr(a, false)
		if ok && out == nil {
			out = make([]slog.Attr, len(attrs))
			copy(out, attrs[:i])
		}
		if out != nil {
			out[i] = ra
		}
	}
	if out == nil {
		return v, false
	}
	return slog.GroupValue(out...), true
}

// redactAny redacts a value of kind Any. Errors are logged as their redacted
// Error() text and byte slices as redacted strings; numbers and booleans pass
// through; string kinds are scanned; anything else (structs, maps, slices,
// pointers, marshalers) goes through JSON so that key and value rules apply
// to its fields too.
func redactAny(v slog.Value) (slog.Value, bool) {
	switch x := v.Any().(type) {
	case nil:
		return v, false
	case error:
		s, _ := redactString(errorString(x))
		return slog.StringValue(s), true
	case []byte:
		s, _ := redactString(string(x))
		return slog.StringValue(s), true
	case json.Marshaler, encoding.TextMarshaler:
		return redactJSON(x), true
	}
	rv := reflect.ValueOf(v.Any())
	switch rv.Kind() {
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return v, false
	case reflect.String:
		s, _ := redactString(rv.String())
		return slog.StringValue(s), true
	}
	return redactJSON(v.Any()), true
}

// errorString returns err.Error(), or a placeholder if Error panics (a nil
// pointer receiver, typically); the panic value is not logged as it may hold
// PHI.
func errorString(err error) (s string) {
	defer func() {
		if recover() != nil {
			s = "!PANIC in Error method"
		}
	}()
	return err.Error()
}

// redactJSON round-trips x through encoding/json and redacts the result as if
// its object keys were attribute keys. The JSON handler prints the result as
// it would have printed x (object keys sorted, numbers exact).
func redactJSON(x any) slog.Value {
	b, err := json.Marshal(x)
	if err != nil {
		// slog.JSONHandler would print "!ERROR:..." here too. The error may
		// quote a MarshalJSON method's own error, so it is scanned.
		s, _ := redactString(err.Error())
		return slog.StringValue("!ERROR:" + s)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var g any
	if err := dec.Decode(&g); err != nil {
		s, _ := redactString(err.Error())
		return slog.StringValue("!ERROR:" + s)
	}
	return slog.AnyValue(redactJSONValue(g))
}

// redactJSONValue redacts a value decoded by encoding/json into any.
func redactJSONValue(x any) any {
	switch t := x.(type) {
	case string:
		s, _ := redactString(t)
		return s
	case []any:
		for i := range t {
			t[i] = redactJSONValue(t[i])
		}
		return t
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, v := range t {
			rk, _ := redactString(k)
			if isPHIKey(k) {
				out[rk] = Redacted
				continue
			}
			out[rk] = redactJSONValue(v)
		}
		return out
	}
	return x // json.Number, bool, nil
}

// isPHIKey reports whether key names PHI: its last dot-separated segment,
// lower-cased and stripped of '_' and '-', is one of the PHI key names.
func isPHIKey(key string) bool {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		key = key[i+1:]
	}
	var buf [16]byte // longer than any PHI key name
	n := 0
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == '_' || c == '-' {
			continue
		}
		if n == len(buf) {
			return false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	switch string(buf[:n]) {
	case "email", "phone", "telecom",
		"name", "given", "family", "firstname", "lastname", "fullname",
		"birthdate", "dob", "address", "mrn", "ssn", "identifier",
		"body", "text", "html", "subject",
		"to", "recipient", "patient", "contact":
		return true
	}
	return false
}
