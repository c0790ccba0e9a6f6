package wszero

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/wszero/wszero/internal/binding"
)

// The ops a client can never send: the server raises them itself.
const (
	opConnect    = "connect"
	opDisconnect = "disconnect"
	opError      = "error"
	opReply      = "_reply"
	opPing       = "_ping"   // server → client when the connection is idle
	opPong       = "_pong"   // client → server, answering _ping
	opReload     = "_reload" // server → client: a static file changed
)

// handlerShapes is shown whenever On is given something it cannot call.
const handlerShapes = `A handler must be a function of one of these shapes:
    func(c *wszero.Client)
    func(c *wszero.Client, p wszero.Params)
    func(c *wszero.Client, p T)          // T is a struct, like struct{ Text string }, or a pointer to one
and it may return nothing, an error, a value, or (a value, an error).
The "connect" and "disconnect" handlers take only the client: func(c *wszero.Client).`

// handlerShape is what the server's handlers look like: the client first.
var handlerShape = &binding.Shape{
	Lead:    reflect.TypeOf((*Client)(nil)),
	Params:  reflect.TypeOf(Params(nil)),
	Values:  true,
	Allowed: handlerShapes,
}

// handler is one registered op: the checked function and where it was
// registered.
type handler struct {
	*binding.Handler
	op    string
	where string // file:line of the On call
	// direct avoids reflection for the commonest shapes.
	direct func(*Client, any) (any, error)
}

// On registers handler for messages whose "op" is op, on the default server.
// See Server.On for the handler shapes.
func On(op string, handler any) {
	Default().On(op, handler)
}

// On registers handler for messages whose "op" is op.
//
// A handler is one of
//
//	func(c *wszero.Client)
//	func(c *wszero.Client, p wszero.Params)
//	func(c *wszero.Client, p T) // T a struct or a pointer to one
//
// and returns nothing, an error, a value R, or (R, error). When the message
// was a call (it carried "_ref"), R is sent back as the result and an error
// as an error message; otherwise R is dropped and an error still reaches the
// sender.
//
// The ops "connect" and "disconnect" are raised by the server when a client
// arrives and leaves; their handlers take only the client.
//
// On panics when the handler has another shape, when op is empty or starts
// with "_", or when op already has a handler: these are mistakes in the
// program, found when it starts, as http.HandleFunc does.
func (s *Server) On(op string, fn any) {
	where := binding.CallerOutside("github.com/wszero/wszero.On", "github.com/wszero/wszero.(*Server).On")
	h, err := newHandler(op, fn, where)
	if err != nil {
		panic(fmt.Sprintf("wszero.On(%q, …) at %s: %v", op, where, err))
	}
	s.handlersMu.Lock()
	defer s.handlersMu.Unlock()
	current := s.handlerMap()
	if old, ok := current[op]; ok {
		panic(fmt.Sprintf("wszero.On(%q, …) at %s: %q already has a handler, registered at %s.\n"+
			"Each op has one handler: remove one of them, or give this one another name.", op, where, op, old.where))
	}
	next := make(map[string]*handler, len(current)+1)
	for k, v := range current {
		next[k] = v
	}
	next[op] = h
	s.handlers.Store(&next)
}

// handlerMap returns the registered handlers by op. The map is never
// changed: On replaces it whole, so readers take no lock.
func (s *Server) handlerMap() map[string]*handler {
	if m := s.handlers.Load(); m != nil {
		return *m
	}
	return nil
}

// handlerFor returns the handler registered for op, or nil.
func (s *Server) handlerFor(op string) *handler {
	return s.handlerMap()[op]
}

// handlerOps lists the ops a client may send, sorted.
func (s *Server) handlerOps() []string {
	handlers := s.handlerMap()
	ops := make([]string, 0, len(handlers))
	for op := range handlers {
		if op != opConnect && op != opDisconnect {
			ops = append(ops, op)
		}
	}
	sort.Strings(ops)
	return ops
}

// newHandler checks op and fn's shape and prepares its binding.
func newHandler(op string, fn any, where string) (*handler, error) {
	if err := binding.CheckOp(op, `wszero.On("hello", hello)`); err != nil {
		return nil, err
	}
	bh, err := binding.NewHandler(handlerShape, fn)
	if err != nil {
		return nil, err
	}
	if (op == opConnect || op == opDisconnect) && bh.Input != binding.InputNone {
		return nil, fmt.Errorf("the %q handler takes only the client: func(c *wszero.Client), not %s", op, bh.Fn.Type())
	}
	return &handler{Handler: bh, op: op, where: where, direct: directCall(fn)}, nil
}

// directCall returns a reflection-free caller for the commonest shapes, or nil.
func directCall(fn any) func(*Client, any) (any, error) {
	switch f := fn.(type) {
	case func(*Client):
		return func(c *Client, _ any) (any, error) { f(c); return nil, nil }
	case func(*Client) error:
		return func(c *Client, _ any) (any, error) { return nil, f(c) }
	case func(*Client, Params):
		return func(c *Client, p any) (any, error) { f(c, p.(map[string]any)); return nil, nil }
	case func(*Client, Params) error:
		return func(c *Client, p any) (any, error) { return nil, f(c, p.(map[string]any)) }
	case func(*Client, Params) (any, error):
		return func(c *Client, p any) (any, error) { return f(c, p.(map[string]any)) }
	}
	return nil
}

// call runs the handler with its bound argument and returns what it returned.
func (h *handler) call(c *Client, arg any) (result any, err error) {
	if h.direct != nil {
		return h.direct(c, arg)
	}
	return h.Call([]reflect.Value{reflect.ValueOf(c)}, arg)
}

// incoming is one decoded message from a client, ready for its handler.
type incoming struct {
	h   *handler
	op  string // the message's op, once it is known to be a string
	arg any    // map[string]any or reflect.Value, as h.Input wants
	ref []byte // raw "_ref", nil when the message is not a call
}

// decode parses one text frame and binds it to its handler's parameters. The
// error it returns is meant for the sender; ref is set whenever the frame
// carried a usable "_ref", so that the error can answer the call.
func (s *Server) decode(data []byte) (in incoming, err error) {
	if in, ok := s.decodeFlat(data); ok {
		return in, nil
	}
	return s.decodeCarefully(data)
}

// decodeCarefully is decode for any message, explaining what is wrong
// with it.
func (s *Server) decodeCarefully(data []byte) (in incoming, err error) {
	// The values in raw are slices of data, which the reader reuses for
	// the next message: what outlives decode is copied.
	raw, ok := binding.SplitObject(data)
	if !ok {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil || m == nil { // "null" gives a nil map
			return in, notAnObject(data, err)
		}
		raw = m
	}
	if r, ok := raw["_ref"]; ok {
		if !binding.IsScalar(r) {
			return in, fmt.Errorf(`"_ref" must be a number or a string that names the call, like {"op": "add", "_ref": 1}; got %s`, binding.DescribeJSON(r))
		}
		if !utf8.Valid(r) {
			// Echoed as it came, it would make the reply an invalid text
			// frame, which a browser answers by closing the connection.
			var s string
			_ = json.Unmarshal(r, &s) // only a string can hold bytes other than ASCII
			r, _ = json.Marshal(s)
		}
		in.ref = bytes.Clone(r)
	}
	opRaw, ok := raw["op"]
	if !ok {
		return in, errors.New(`the message has no "op": say which handler it is for, like {"op": "hello"}`)
	}
	op, ok := s.opName(opRaw)
	if !ok {
		return in, fmt.Errorf(`"op" must be a string, like {"op": "hello"}; got %s`, binding.DescribeJSON(opRaw))
	}
	if op == opPong {
		return in, nil // an answer to the server's _ping: nothing to handle
	}
	in.op = op
	switch {
	case op == "":
		return in, errors.New(`"op" is empty: say which handler the message is for, like {"op": "hello"}`)
	case op == opConnect || op == opDisconnect:
		return in, fmt.Errorf("%q is sent by the server itself when a client arrives or leaves: a client cannot send it; choose another op name", op)
	case strings.HasPrefix(op, "_"):
		return in, fmt.Errorf("%s: ops starting with \"_\" belong to the wszero protocol; choose a name without the \"_\"", binding.Shorten(op))
	}
	h := s.handlerFor(op)
	if h == nil {
		return in, s.unknownOp(op)
	}
	in.h = h
	in.arg, err = s.bind(h, raw)
	return in, err
}

// decodeFlat is decode for the commonest messages: a flat object (see
// binding.SplitFlat) for an op that has a handler, whose keys and values
// bind as they are. It reports false for anything else, for decode to take
// the message through its careful path, which explains what is wrong.
func (s *Server) decodeFlat(data []byte) (in incoming, ok bool) {
	var room [16]binding.RawField
	fields, ok := binding.SplitFlat(data, room[:0])
	if !ok {
		return in, false
	}
	var opRaw, ref []byte
	for _, f := range fields {
		switch string(f.Key) {
		case "op":
			if opRaw != nil {
				return in, false
			}
			opRaw = f.Value
		case "_ref":
			if ref != nil || f.Value[0] == 'n' || f.Value[0] == 't' || f.Value[0] == 'f' {
				return in, false // twice, or not a number or a string
			}
			ref = f.Value
		}
	}
	inner, plain := binding.PlainString(opRaw)
	if !plain {
		return in, false
	}
	h := s.handlerMap()[string(inner)]
	if h == nil || h.op == opConnect || h.op == opDisconnect {
		return in, false
	}
	arg, ok := bindFlat(h, fields)
	if !ok {
		return in, false
	}
	if ref != nil {
		ref = bytes.Clone(ref) // data is the reader's, and reused
	}
	return incoming{h: h, op: h.op, arg: arg, ref: ref}, true
}

// bindFlat binds fields for h. A panic in a parameter type's own
// UnmarshalJSON reports false: bind meets it again, and explains it.
func bindFlat(h *handler, fields []binding.RawField) (arg any, ok bool) {
	defer func() {
		if recover() != nil {
			arg, ok = nil, false
		}
	}()
	return h.BindFlat(h.op, fields)
}

// opName decodes the raw "op" of a message. A plain op that has a handler
// is that handler's own string, so that the commonest messages allocate
// none; ok is false when raw is not a JSON string.
func (s *Server) opName(raw []byte) (op string, ok bool) {
	if inner, plain := binding.PlainString(raw); plain {
		handlers := s.handlerMap()
		if h := handlers[string(inner)]; h != nil {
			return h.op, true
		}
		return string(inner), true
	}
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &op) != nil {
		return "", false
	}
	return op, true
}

// bind turns the keys of a message into the argument h takes after the
// client. A panic in a parameter type's own UnmarshalJSON is an error for
// the sender, not the end of the server.
func (s *Server) bind(h *handler, raw map[string]json.RawMessage) (arg any, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.logger().Error("wszero: reading a message's parameters panicked", "op", h.op, "panic", v, "stack", string(debug.Stack()))
			arg, err = nil, fmt.Errorf("%s could not read the message: the server crashed reading it (the server log shows where)", h.op)
		}
	}()
	return h.Bind(h.op, raw)
}

// unknownOp explains that nothing handles op, suggesting the nearest op.
func (s *Server) unknownOp(op string) error {
	ops := s.handlerOps()
	if len(ops) == 0 {
		return fmt.Errorf("no handler for %s: the server has no handlers yet; add one with wszero.On(%s, …)", binding.Shorten(op), binding.Shorten(op))
	}
	if near := binding.Nearest(op, ops); near != "" {
		return fmt.Errorf("no handler for %s — did you mean %q?", binding.Shorten(op), near)
	}
	return fmt.Errorf("no handler for %s: the server handles %s", binding.Shorten(op), binding.QuoteList(ops))
}

// notAnObject explains why a frame is not a message.
func notAnObject(data []byte, err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("the message is not valid JSON (%v at byte %d): send an object like {\"op\": \"hello\"}", syn, syn.Offset)
	}
	return fmt.Errorf(`a message must be a JSON object like {"op": "hello"}, not %s`, binding.DescribeJSON(bytes.TrimLeft(data, " \t\r\n")))
}

// run calls the handler for a decoded message on the current goroutine and
// sends the reply or the error. A panic is recovered and logged.
func (s *Server) run(c *Client, in incoming) {
	defer func() {
		if v := recover(); v != nil {
			s.logger().Error("wszero: handler panicked", "op", in.h.op, "client", c.id, "panic", v, "stack", string(debug.Stack()))
			msg := in.h.op + " crashed on the server: the server's log says where and why"
			if s.teaching {
				// A class's own server: the child at the page wants the why.
				msg = fmt.Sprintf("%s crashed on the server: %v (the terminal shows the line)", in.h.op, v)
			}
			c.sendError(in.ref, in.h.op, msg)
		}
	}()
	result, err := in.h.call(c, in.arg)
	switch {
	case err != nil:
		msg := err.Error()
		if msg == "" {
			msg = in.h.op + " failed (its error has no message)"
		}
		c.sendError(in.ref, in.h.op, msg)
	case in.ref != nil:
		c.sendReply(in.ref, in.h.op, result)
	}
}
