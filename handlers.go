package wszero

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"

	"github.com/wszero/wszero/internal/binding"
	"github.com/wszero/wszero/internal/protocol"
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
		if !protocol.IsServerRaised(op) {
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
	switch {
	case protocol.RaisedWithGroup(op) && bh.Input != binding.InputNone:
		// It receives {"group": name}: its parameter must take that.
		if _, err := bh.Bind(op, map[string]json.RawMessage{protocol.KeyGroup: json.RawMessage(`"g"`)}); err != nil {
			return nil, fmt.Errorf(`the %q handler receives {"group": name}: take func(c *wszero.Client, p struct{ Group string }) (or only the client); %s does not fit: %v`, op, bh.Fn.Type(), err)
		}
	case protocol.IsServerRaised(op) && bh.Input != binding.InputNone:
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
