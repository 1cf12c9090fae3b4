package fhirnotify

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// safeError is an error whose text was written here and holds no input
// value, so it may be shown as diagnostics as it is.
type safeError string

func (e safeError) Error() string { return string(e) }

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// decodeError turns err, from decoding raw into a value of type t, into an
// Error whose expression points at the element below expr that failed and
// whose diagnostics say what was expected there, without the value.
func decodeError(raw []byte, t reflect.Type, expr, reason string, isMalformed bool, err error) *Error {
	path, leaf, leafErr := locate(raw, t, expr)
	if leafErr == nil { // cannot happen for a deterministic decoder; be safe
		path, leaf, leafErr = expr, t, err
	}
	code, diag := describe(leaf, leafErr)
	return &Error{Malformed: isMalformed, Reason: reason, Code: code, Expression: path, Diagnostics: diag}
}

// locate finds the innermost element of raw that does not decode into its
// part of t. It returns that element's expression, its Go type and the
// error decoding it alone, or a nil error when raw decodes.
func locate(raw []byte, t reflect.Type, expr string) (string, reflect.Type, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	err := json.Unmarshal(raw, reflect.New(t).Interface())
	if err == nil {
		return "", nil, nil
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return expr, t, err
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return expr, t, err
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, ok := fieldType(t, k)
			if !ok {
				continue
			}
			if p, lt, le := locate(obj[k], ft, expr+"."+k); le != nil {
				return p, lt, le
			}
		}
	case reflect.Slice, reflect.Array:
		var arr []json.RawMessage
		if json.Unmarshal(raw, &arr) != nil {
			return expr, t, err
		}
		for i, el := range arr {
			if p, lt, le := locate(el, t.Elem(), fmt.Sprintf("%s[%d]", expr, i)); le != nil {
				return p, lt, le
			}
		}
	}
	return expr, t, err
}

// fieldType returns the type of t's field that encoding/json fills from
// key (matching case-insensitively, as encoding/json does).
func fieldType(t reflect.Type, key string) (reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if strings.EqualFold(name, key) {
			return f.Type, true
		}
	}
	return nil, false
}

// describe returns the issue code and diagnostics for err, from decoding
// one element into t. It never repeats the element's value.
func describe(t reflect.Type, err error) (code, diagnostics string) {
	var (
		safe safeError
		ute  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &safe):
		return IssueInvalid, string(safe)
	case strings.HasPrefix(err.Error(), "unknown ") && len(codesOf(t)) > 0:
		return IssueInvalid, fmt.Sprintf("unknown code: expected one of the FHIR R4 %s codes (%s)",
			t.Name(), strings.Join(codesOf(t), ", "))
	case errors.As(err, &ute):
		return IssueStructure, "wrong JSON type: expected " + jsonKind(t)
	}
	return IssueInvalid, "invalid value for " + jsonKind(t)
}

// codesOf lists the codes of a golang-fhir-models code type (an integer
// type with a Code method), or nil for any other type.
func codesOf(t reflect.Type) []string {
	if t == nil {
		return nil
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
	default:
		return nil
	}
	m, ok := t.MethodByName("Code")
	if !ok || m.Type.NumIn() != 1 || m.Type.NumOut() != 1 || m.Type.Out(0).Kind() != reflect.String {
		return nil
	}
	var codes []string
	for i := range int64(200) {
		v := reflect.New(t).Elem()
		v.SetInt(i)
		c := m.Func.Call([]reflect.Value{v})[0].String()
		if c == "" || c == "<unknown>" {
			break
		}
		codes = append(codes, c)
	}
	return codes
}

// jsonKind names the JSON a value of type t is read from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a different value"
	}
	if len(codesOf(t)) > 0 {
		return "a code (string)"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "a different value"
}
