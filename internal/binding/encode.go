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
// marshals to a JSON object, like a struct, a json.RawMessage or a type
// with its own MarshalJSON. What it renders has exactly one "op", the
// op given, first: an "op" key in params, however its JSON spells it
// ("o\u0070"), is left out. A key of params that starts with "_", which
// belongs to the protocol, is an error, however it is spelled. The error
// has no package prefix.
func EncodeMessage(op string, params any) ([]byte, error) {
	var body []byte
	var err error
	switch p := params.(type) {
	case nil:
	case map[string]any:
		if p != nil {
			body, err = marshalWithoutOp(op, p)
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
		if body, err = withoutOp(op, b); err != nil {
			return nil, err
		}
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

// reservedKey explains why params may not carry key, which starts with
// the protocol's prefix.
func reservedKey(op, key string) error {
	return fmt.Errorf(`the params of %q have the key %s: keys starting with "_" belong to the wszero protocol; rename it (a json tag does it for a struct field)`, op, Shorten(key))
}

// marshalWithoutOp marshals m, leaving out its "op" key.
func marshalWithoutOp(op string, m map[string]any) ([]byte, error) {
	for k := range m {
		if strings.HasPrefix(k, protocol.ReservedPrefix) {
			return nil, reservedKey(op, k)
		}
	}
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

// withoutOp returns obj, the JSON object that params marshalled to, with
// its "op" keys left out, and refuses it if a key starts with "_". Keys
// are compared as JSON decodes them, escapes and all, since that is how
// browsers and the Go client read them. obj comes from json.Marshal, so
// it is valid JSON; it is returned as it is when it has no "op".
func withoutOp(op string, obj []byte) ([]byte, error) {
	var keep []byte // obj without its "op" keys, once one is found
	copied := 0     // how much of obj is in keep
	i := skipSpace(obj, 1)
	for i < len(obj) && obj[i] != '}' {
		k0 := i
		i = skipString(obj, i)
		// A plain key is compared as it stands, with nothing allocated; an
		// escaped one is decoded first.
		key, plain := PlainString(obj[k0:i])
		if !plain {
			var s string
			if json.Unmarshal(obj[k0:i], &s) != nil {
				return nil, fmt.Errorf("the params of %q have a key that is not valid JSON", op)
			}
			key = []byte(s)
		}
		i = skipSpace(obj, i)
		i = skipValue(obj, skipSpace(obj, i+1)) // the colon, then the value
		i = skipSpace(obj, i)
		end := i
		if end < len(obj) && obj[end] == ',' {
			end = skipSpace(obj, end+1)
		}
		switch {
		case bytes.HasPrefix(key, []byte(protocol.ReservedPrefix)):
			return nil, reservedKey(op, string(key))
		case string(key) == protocol.KeyOp:
			if keep == nil {
				keep = make([]byte, 0, len(obj))
			}
			keep = append(keep, obj[copied:k0]...)
			copied = end
		}
		i = end
	}
	if keep == nil {
		return obj, nil
	}
	keep = append(keep, obj[copied:]...)
	// Leaving out the last key leaves a comma before the "}".
	if j := len(keep) - 2; j > 0 {
		k := j
		for k > 0 && (keep[k] == ' ' || keep[k] == '\t' || keep[k] == '\r' || keep[k] == '\n') {
			k--
		}
		if keep[k] == ',' {
			keep = append(keep[:k], '}')
		}
	}
	return keep, nil
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
