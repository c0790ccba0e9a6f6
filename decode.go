package wszero

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/wszero/wszero/internal/binding"
	"github.com/wszero/wszero/internal/protocol"
)

// message is one frame from a client, decoded: either what its handler is
// to be called with, or the words that tell the sender why it cannot be.
// A frame that asks for nothing (a _pong) has neither.
type message struct {
	h       *handler // the op's handler; nil when no handler takes it
	op      string   // the message's op, once it is known to be a string
	arg     any      // the bound parameter: map[string]any or reflect.Value, as h.Input wants
	ref     []byte   // raw "_ref", nil when the message is not a call
	problem string   // why it cannot be handled, for the sender; "" when it can
	seen    uint64   // an _ack's count of the messages the client has received
}

// empty reports whether the message asks for nothing.
func (m message) empty() bool { return m.h == nil && m.problem == "" }

// decodeFrame decodes one frame of the given kind (a websocket message
// type). data is the reader's buffer: what outlives decoding is copied.
func (s *Server) decodeFrame(kind int, data []byte) message {
	switch {
	case kind != websocket.TextMessage:
		return message{problem: `wszero takes text frames holding JSON, like {"op": "hello"}; this was a binary frame`}
	case !utf8.Valid(data):
		return message{problem: `the message is not valid UTF-8 text, which WebSocket text frames and JSON must be: send a JSON object like {"op": "hello"}`}
	}
	return s.decode(data)
}

// unworded is the problem of a message whose error had no words.
const unworded = "the message cannot be read (the reason has no words)"

// decode parses one text frame and binds it to its handler's parameters.
// Whatever is wrong with the frame becomes the message's problem; ref is
// set whenever the frame carried a usable "_ref", so that the error can
// answer the call.
func (s *Server) decode(data []byte) message {
	if m, ok := s.decodeFlat(data); ok {
		return m
	}
	m, err := s.decodeCarefully(data)
	if err != nil {
		m.problem = err.Error()
		if m.problem == "" {
			m.problem = unworded
		}
	}
	return m
}

// decodeCarefully is decode for any message, explaining what is wrong
// with it.
func (s *Server) decodeCarefully(data []byte) (in message, err error) {
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
	if r, ok := raw[protocol.KeyRef]; ok {
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
	opRaw, ok := raw[protocol.KeyOp]
	if !ok {
		return in, errors.New(`the message has no "op": say which handler it is for, like {"op": "hello"}`)
	}
	op, ok := s.opName(opRaw)
	if !ok {
		return in, fmt.Errorf(`"op" must be a string, like {"op": "hello"}; got %s`, binding.DescribeJSON(opRaw))
	}
	in.op = op
	switch op {
	case protocol.OpPong:
		return in, nil // an answer to the server's _ping: nothing to handle
	case protocol.OpAck:
		seen, ok := protocol.Count(raw[protocol.KeySeen])
		if !ok {
			return in, fmt.Errorf(`"_ack" says how many messages have arrived, like {"op": "_ack", "seen": 12}; got "seen": %s`, binding.DescribeJSON(raw[protocol.KeySeen]))
		}
		in.seen = seen
		return in, nil
	}
	switch {
	case op == "":
		return in, errors.New(`"op" is empty: say which handler the message is for, like {"op": "hello"}`)
	case protocol.IsServerRaised(op):
		return in, fmt.Errorf("%q is sent by the server itself when a client arrives or leaves: a client cannot send it; choose another op name", op)
	case strings.HasPrefix(op, protocol.ReservedPrefix):
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
func (s *Server) decodeFlat(data []byte) (in message, ok bool) {
	var room [16]binding.RawField
	fields, ok := binding.SplitFlat(data, room[:0])
	if !ok {
		return in, false
	}
	var opRaw, ref []byte
	for _, f := range fields {
		switch string(f.Key) {
		case protocol.KeyOp:
			if opRaw != nil {
				return in, false
			}
			opRaw = f.Value
		case protocol.KeyRef:
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
	if string(inner) == protocol.OpAck && len(fields) == 2 && ref == nil {
		return flatAck(fields)
	}
	h := s.handlerMap()[string(inner)]
	if h == nil || protocol.IsServerRaised(h.op) {
		return in, false
	}
	arg, ok := bindFlat(h, fields)
	if !ok {
		return in, false
	}
	if ref != nil {
		ref = bytes.Clone(ref) // data is the reader's, and reused
	}
	return message{h: h, op: h.op, arg: arg, ref: ref}, true
}

// flatAck decodes a session client's commonest message, {"op": "_ack",
// "seen": n}, without the careful path's map: ok is false for anything
// else, which the careful path explains.
func flatAck(fields []binding.RawField) (message, bool) {
	for _, f := range fields {
		if string(f.Key) == protocol.KeySeen {
			if seen, ok := protocol.Count(f.Value); ok {
				return message{op: protocol.OpAck, seen: seen}, true
			}
		}
	}
	return message{}, false
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
