// Package binding is what the wszero server and the Go client share about
// handlers: checking a handler's shape when it is registered, binding the
// keys of a message to its parameter (wszero.Params or a struct), calling
// it, encoding messages, and the words of the errors all of this produces.
//
// A handler takes an optional leading argument, described by Shape.Lead
// (the server's take a *wszero.Client; the client's take nothing), then at
// most one parameter: a Params-like map or a struct. The package never
// imports wszero: the Params type is handed to it as a reflect.Type, and a
// Params parameter is bound as a map[string]any that the caller converts.
package binding

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/wszero/wszero/internal/protocol"
)

// Shape describes the handlers one kind of registration accepts.
type Shape struct {
	// Lead is the type of the argument every handler takes first, or nil
	// when handlers take only their parameter.
	Lead reflect.Type
	// Params is the named map type (wszero.Params) a handler may take for
	// its parameters, besides map[string]any.
	Params reflect.Type
	// Values allows handlers to return a value: R or (R, error). Without
	// it, a handler returns nothing or an error.
	Values bool
	// Allowed lists the shapes in words; it ends every shape error.
	Allowed string
}

// InputKind says what a handler takes after its leading argument.
type InputKind uint8

// The inputs a handler can take.
const (
	InputNone   InputKind = iota // nothing
	InputParams                  // wszero.Params or map[string]any
	InputStruct                  // a struct T or *T
)

// OutputKind says what a handler returns.
type OutputKind uint8

// The results a handler can return.
const (
	OutputNone        OutputKind = iota // nothing
	OutputError                         // error
	OutputValue                         // R
	OutputValueAndErr                   // (R, error)
)

var (
	errorType = reflect.TypeOf((*error)(nil)).Elem()
	mapType   = reflect.TypeOf(map[string]any(nil))
	anyType   = reflect.TypeOf((*any)(nil)).Elem()
)

// Handler is a function whose shape has been checked, ready to be called
// with the parameters bound from a message.
type Handler struct {
	Fn     reflect.Value // the function
	Input  InputKind     // what it takes after its leading argument
	Output OutputKind    // what it returns
	binder *structBinder // for InputStruct
}

// CheckOp refuses op names a handler cannot be registered for. example is
// a registration to show, like `wszero.On("hello", hello)`.
func CheckOp(op, example string) error {
	switch {
	case op == "":
		return errors.New("the op is empty: give the handler a name, like " + example)
	case strings.HasPrefix(op, protocol.ReservedPrefix):
		return errors.New(`ops starting with "_" belong to the wszero protocol: choose a name without the "_"`)
	}
	return nil
}

// NewHandler checks that fn has one of the shapes s allows and prepares
// the binding of its parameter. The error says what is wrong, in words,
// followed by s.Allowed.
func NewHandler(s *Shape, fn any) (*Handler, error) {
	if fn == nil {
		return nil, errors.New("the handler is nil.\n" + s.Allowed)
	}
	v := reflect.ValueOf(fn)
	t := v.Type()
	if t.Kind() != reflect.Func {
		return nil, fmt.Errorf("the handler has type %s, not a function.\n%s", t, s.Allowed)
	}
	if v.IsNil() {
		return nil, fmt.Errorf("the handler is a nil %s.\n%s", t, s.Allowed)
	}
	wrongShape := func(why string) error {
		return fmt.Errorf("the handler %s %s.\n%s", t, why, s.Allowed)
	}
	lead, tooMany, position := 0, "a handler takes at most one, its parameters", "its parameter"
	if s.Lead != nil {
		lead = 1
		tooMany = fmt.Sprintf("a handler takes the %s and at most one more", s.Lead)
		position = "its second parameter"
	}
	switch {
	case s.Lead != nil && (t.NumIn() == 0 || t.In(0) != s.Lead):
		return nil, wrongShape(fmt.Sprintf("must take a %s first", s.Lead))
	case t.NumIn() > lead+1:
		return nil, wrongShape(fmt.Sprintf("takes %d parameters: %s", t.NumIn(), tooMany))
	case t.IsVariadic():
		return nil, wrongShape(fmt.Sprintf("takes ...%s: a handler cannot take a variable number of parameters", t.In(t.NumIn()-1).Elem()))
	}
	h := &Handler{Fn: v}
	if t.NumIn() == lead+1 {
		in := t.In(lead)
		switch {
		case in == s.Params || in == mapType:
			h.Input = InputParams
		case isStructOrPointerToStruct(in):
			b, err := newStructBinder(in)
			if err != nil {
				return nil, fmt.Errorf("the handler %s cannot take its parameters: %v", t, err)
			}
			h.Input, h.binder = InputStruct, b
		default:
			return nil, wrongShape(fmt.Sprintf("takes %s as %s, which must be %s or a struct", in, position, s.Params))
		}
	}
	switch {
	case t.NumOut() == 0:
		h.Output = OutputNone
	case t.NumOut() == 1 && t.Out(0) == errorType:
		h.Output = OutputError
	case !s.Values:
		return nil, wrongShape(fmt.Sprintf("returns %s: nothing receives what it returns, so return nothing or an error", results(t)))
	case t.NumOut() == 1:
		h.Output = OutputValue
	case t.NumOut() == 2 && t.Out(1) == errorType:
		h.Output = OutputValueAndErr
	case t.NumOut() == 2:
		return nil, wrongShape(fmt.Sprintf("returns (%s, %s): when a handler returns two values, the second must be an error", t.Out(0), t.Out(1)))
	default:
		return nil, wrongShape(fmt.Sprintf("returns %d values: return nothing, an error, a value, or (a value, an error)", t.NumOut()))
	}
	return h, nil
}

// results renders what a function type returns: "int", "(int, error)".
func results(t reflect.Type) string {
	if t.NumOut() == 1 {
		return t.Out(0).String()
	}
	outs := make([]string, t.NumOut())
	for i := range outs {
		outs[i] = t.Out(i).String()
	}
	return "(" + strings.Join(outs, ", ") + ")"
}

// Bind turns the keys of a message into the argument the handler takes
// after its leading one: a map[string]any for InputParams (the caller
// converts it to its Params type where it wants one), a pointer to the
// bound struct for InputStruct (which an interface holds without
// allocating; Call passes it, or what it points to), nil for InputNone.
// The error, meant for the sender, names op and the key at fault.
func (h *Handler) Bind(op string, raw map[string]json.RawMessage) (any, error) {
	switch h.Input {
	case InputParams:
		return BindParams(op, raw)
	case InputStruct:
		ptr, err := h.binder.bind(op, raw)
		if err != nil {
			return nil, err
		}
		return ptr.Interface(), nil
	}
	if keys := userKeys(raw); len(keys) > 0 {
		return nil, noKeysWanted(op, keys[0])
	}
	return nil, nil
}

// Call runs the handler with lead (its leading argument, or nil when it
// takes none) and arg, as Bind returned it, and returns what it returned.
func (h *Handler) Call(lead []reflect.Value, arg any) (result any, err error) {
	var room [2]reflect.Value // the arguments, without allocating for them
	args := append(room[:0], lead...)
	switch h.Input {
	case InputParams:
		args = append(args, reflect.ValueOf(arg).Convert(h.Fn.Type().In(len(lead))))
	case InputStruct:
		v := reflect.ValueOf(arg)
		if !h.binder.ptr {
			v = v.Elem()
		}
		args = append(args, v)
	}
	out := h.Fn.Call(args)
	switch h.Output {
	case OutputError:
		err, _ = out[0].Interface().(error)
	case OutputValue:
		result = out[0].Interface()
	case OutputValueAndErr:
		result = out[0].Interface()
		err, _ = out[1].Interface().(error)
	}
	return result, err
}

// BindFlat is Bind for a flat message, given as SplitFlat's fields. It
// reports false when the message is to go through Bind instead: whenever
// something is wrong with it, Bind finds the same and words it.
func (h *Handler) BindFlat(op string, fields []RawField) (any, bool) {
	switch h.Input {
	case InputParams:
		return bindFlatParams(fields)
	case InputStruct:
		ptr, ok := h.binder.bindFlat(op, fields)
		if !ok {
			return nil, false
		}
		return ptr.Interface(), true
	}
	for _, f := range fields {
		if isUserKey(string(f.Key)) {
			return nil, false
		}
	}
	return nil, true
}

// bindFlatParams is BindParams for a flat message: its values are plain
// strings, numbers, booleans and nulls, decoded as encoding/json would.
func bindFlatParams(fields []RawField) (map[string]any, bool) {
	p := make(map[string]any, len(fields))
	for _, f := range fields {
		if !isUserKey(string(f.Key)) {
			continue
		}
		var val any
		switch v := f.Value; v[0] {
		case '"':
			val = string(v[1 : len(v)-1]) // plain: nothing to unescape
		case 't':
			val = true
		case 'f':
			val = false
		case 'n':
		default:
			n, err := strconv.ParseFloat(string(v), 64)
			if err != nil {
				return nil, false // out of range: BindParams says so
			}
			val = n
		}
		p[string(f.Key)] = val // the last of duplicate keys wins, as in SplitObject
	}
	return p, true
}

// BindParams decodes every key meant for the handler into a map.
func BindParams(op string, raw map[string]json.RawMessage) (map[string]any, error) {
	p := make(map[string]any, len(raw))
	for _, k := range userKeys(raw) {
		var val any
		if err := json.Unmarshal(raw[k], &val); err != nil {
			return nil, wrongType(op, k, anyType, raw[k], err)
		}
		p[k] = val
	}
	return p, nil
}

// isUserKey reports whether a message key is meant for the handler.
func isUserKey(k string) bool {
	return k != protocol.KeyOp && !strings.HasPrefix(k, protocol.ReservedPrefix)
}

// noKeysWanted explains that op takes no keys but got key.
func noKeysWanted(op, key string) error {
	return fmt.Errorf("%s takes no keys, but got %s: send just {\"op\": %q}", op, Shorten(key), op)
}

// QuoteList renders names as "a", "b" and "c".
func QuoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	switch len(q) {
	case 0:
		return "nothing"
	case 1:
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}

// CallerOutside returns file:line of the first caller of the function
// that calls CallerOutside which is not one of funcs (full names, like
// "github.com/wszero/wszero.(*Server).On"), so that a panic in a
// registration points at the user's line. A method value counts as its
// method.
func CallerOutside(funcs ...string) string {
	pcs := make([]uintptr, 16)
	n := runtime.Callers(2, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if !slices.Contains(funcs, strings.TrimSuffix(f.Function, "-fm")) { // -fm: called through a method value, like on := s.On
			return fmt.Sprintf("%s:%d", f.File, f.Line)
		}
		if !more {
			return "unknown place"
		}
	}
}
