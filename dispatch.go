package wszero

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"

	"github.com/wszero/wszero/internal/binding"
	"github.com/wszero/wszero/internal/protocol"
)

// dispatch does what a message from c asks, on the handler loop: the
// guards first (an op the client may not send is refused for that,
// whatever else is wrong with the message), then the error that says what
// is wrong with it, or else its handler and the reply. Errors, too, come
// through the loop, so that they follow the replies to the client's
// earlier messages.
func (s *Server) dispatch(c *Client, m message) {
	if m.h != nil && s.refused(c, m.ref, m.op) {
		return
	}
	if m.problem != "" {
		c.sendError(m.ref, m.op, m.problem)
		return
	}
	s.invoke(c, m)
}

// refused runs the guards for op. When one refuses, or panics, it answers
// the sender with an error and reports true.
func (s *Server) refused(c *Client, ref []byte, op string) (refused bool) {
	guards := s.opts.guards[op]
	if len(s.opts.opGuards) == 0 && len(guards) == 0 {
		return false
	}
	defer func() {
		if v := recover(); v != nil {
			s.logger().Error("wszero: a guard panicked", "op", op, "client", c.id, "panic", v, "stack", string(debug.Stack()))
			c.sendError(ref, op, fmt.Sprintf("%.40q could not be checked: the server crashed checking it (the server's log says where)", op))
			refused = true
		}
	}()
	var err error
	for _, g := range s.opts.opGuards {
		if err = g(c, op); err != nil {
			break
		}
	}
	for i := 0; err == nil && i < len(guards); i++ {
		err = guards[i](c)
	}
	if err == nil {
		return false
	}
	msg := err.Error()
	if msg == "" {
		msg = fmt.Sprintf("%.40q is not allowed", op)
	}
	s.logThrottled(slog.LevelInfo, "wszero: a guard refused a message", "op", op, "client", c.id, "err", msg)
	c.sendError(ref, op, msg)
	return true
}

// invoke calls the handler of a decoded message on the current goroutine
// and sends the reply or the error. A panic is recovered and logged. The
// connect and disconnect handlers, which no guard checks, come here
// straight.
func (s *Server) invoke(c *Client, in message) {
	defer func() {
		if v := recover(); v != nil {
			cr := newCrash(in.h.op, v)
			s.logCrash(c, cr)
			// A class's own server (RunServer): the child at the page wants the why.
			c.sendError(in.ref, in.h.op, cr.forTheSender(s.teaching))
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

// call runs the handler with its bound argument and returns what it returned.
func (h *handler) call(c *Client, arg any) (result any, err error) {
	if h.direct != nil {
		return h.direct(c, arg)
	}
	return h.Call([]reflect.Value{reflect.ValueOf(c)}, arg)
}

// The fixed parts of the frames that answer a message.
const (
	replyStart  = `{"` + protocol.KeyOp + `":"` + protocol.OpReply + `","` + protocol.KeyRef + `":`
	replyResult = `,"` + protocol.KeyResult + `":`
	errorStart  = `{"` + protocol.KeyOp + `":"` + protocol.OpError + `","` + protocol.KeyMsg + `":`
	errorFor    = `,"` + protocol.KeyFor + `":`
	errorRef    = `,"` + protocol.KeyRef + `":`
)

// sendReply answers the call ref with result.
func (c *Client) sendReply(ref []byte, op string, result any) {
	res, err := json.Marshal(result)
	if err != nil {
		c.server.logger().Error("wszero: handler result cannot be sent as JSON", "op", op, "err", err)
		c.sendError(ref, op, fmt.Sprintf("%s returned a value that cannot be sent as JSON: %v", op, err))
		return
	}
	if size := len(res) + len(ref) + len(replyStart) + len(replyResult) + 1; size > c.server.opts.queueBytes {
		c.server.logger().Error("wszero: a handler's result is too big to send", "op", op, "bytes", size, "limit", c.server.opts.queueBytes)
		c.sendError(ref, op, fmt.Sprintf("%s returned a result of %d bytes, more than can be sent (%d bytes, wszero.WithSendQueue)", op, size, c.server.opts.queueBytes))
		return
	}
	var b bytes.Buffer
	b.Grow(len(res) + len(ref) + 32)
	b.WriteString(replyStart)
	b.Write(ref)
	b.WriteString(replyResult)
	b.Write(res)
	b.WriteByte('}')
	_ = c.enqueue(outFrame{kind: frameText, data: b.Bytes()})
}

// sendError sends {"op": "error", "msg": msg, "for": op}, answering the
// call ref when it is not nil. op is the op of the message the error is
// about, or "" when that is not known.
func (c *Client) sendError(ref []byte, op, msg string) {
	var b bytes.Buffer
	b.WriteString(errorStart)
	binding.WriteJSON(&b, msg)
	if op != "" {
		b.WriteString(errorFor)
		binding.WriteJSON(&b, op)
	}
	if ref != nil {
		b.WriteString(errorRef)
		b.Write(ref)
	}
	b.WriteByte('}')
	_ = c.enqueue(outFrame{kind: frameText, data: b.Bytes()})
}
