package binding

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/wszero/wszero/internal/protocol"
)

// CheckSendOp refuses ops that no one may send: an empty one, and those
// starting with "_", which belong to the protocol. The error has no
// package prefix; callers add theirs.
func CheckSendOp(op string) error {
	switch {
	case op == "":
		return errors.New(`a message needs an op, like Send("hello", nil)`)
	case strings.HasPrefix(op, protocol.ReservedPrefix):
		return fmt.Errorf(`op %q: ops starting with "_" belong to the wszero protocol; choose a name without the "_"`, op)
	}
	return nil
}

// EncodeMessage renders {"op": op, …params}. params is nil, a
// map[string]any (callers convert their Params to it), or anything that
// marshals to a JSON object, like a struct. op comes first and wins over
// an "op" key in params. The error has no package prefix.
func EncodeMessage(op string, params any) ([]byte, error) {
	var body []byte
	var err error
	switch p := params.(type) {
	case nil:
	case map[string]any:
		if p != nil {
			body, err = marshalWithoutOp(p)
		}
	default:
		b, err := json.Marshal(params)
		if err != nil {
			return nil, fmt.Errorf("the params of %q cannot be sent as JSON: %v", op, err)
		}
		if string(b) == "null" {
			break
		}
		if len(b) == 0 || b[0] != '{' {
			return nil, fmt.Errorf("the params of %q must be wszero.Params, a map or a struct, not %s", op, reflect.TypeOf(params))
		}
		if bytes.Contains(b, []byte(`"`+protocol.KeyOp+`"`)) {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(b, &m); err == nil {
				if _, has := m[protocol.KeyOp]; has {
					delete(m, protocol.KeyOp)
					b, _ = json.Marshal(m)
				}
			}
		}
		body = b
	}
	if err != nil {
		return nil, fmt.Errorf("the params of %q cannot be sent as JSON: %v", op, err)
	}
	var buf bytes.Buffer
	buf.Grow(len(op) + len(body) + 10)
	buf.WriteString(`{"` + protocol.KeyOp + `":`)
	WriteJSON(&buf, op)
	if len(body) > 2 { // more than "{}"
		buf.WriteByte(',')
		buf.Write(body[1:])
	} else {
		buf.WriteByte('}')
	}
	return buf.Bytes(), nil
}

// marshalWithoutOp marshals m, leaving out its "op" key.
func marshalWithoutOp(m map[string]any) ([]byte, error) {
	if _, has := m[protocol.KeyOp]; has {
		c := make(map[string]any, len(m))
		for k, v := range m {
			if k != protocol.KeyOp {
				c[k] = v
			}
		}
		m = c
	}
	return json.Marshal(m)
}

// WriteJSON appends s as a JSON string.
func WriteJSON(buf *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		// What json.Marshal would escape: quotes, controls, HTML's <, >
		// and &, and anything not ASCII (it checks UTF-8).
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			b, _ := json.Marshal(s)
			buf.Write(b)
			return
		}
	}
	buf.WriteByte('"')
	buf.WriteString(s)
	buf.WriteByte('"')
}
