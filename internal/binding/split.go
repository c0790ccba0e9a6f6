package binding

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/wszero/wszero/internal/protocol"
)

// SplitObject decodes data, a JSON object, into its keys and raw values,
// as json.Unmarshal into a map[string]json.RawMessage does (the last of
// duplicate keys wins; keys are unescaped), but without decoding each
// value through reflection. The values are slices of data. It reports
// false when data is not valid JSON or not an object: the caller then
// decodes it with encoding/json for the error.
func SplitObject(data []byte) (map[string]json.RawMessage, bool) {
	if !json.Valid(data) {
		return nil, false
	}
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}
	m := make(map[string]json.RawMessage, 8)
	i = skipSpace(data, i+1)
	if data[i] == '}' {
		return m, true
	}
	for {
		// data is valid JSON: a key, a colon and a value follow.
		k0 := i
		i = skipString(data, i)
		key, ok := plainKey(data[k0:i])
		if !ok {
			var s string
			if json.Unmarshal(data[k0:i], &s) != nil {
				return nil, false
			}
			key = s
		}
		i = skipSpace(data, i)
		i = skipSpace(data, i+1) // the colon
		v0 := i
		i = skipValue(data, i)
		m[key] = data[v0:i]
		i = skipSpace(data, i)
		if data[i] == '}' {
			return m, true
		}
		i = skipSpace(data, i+1) // the comma
	}
}

// plainKey returns the text of a quoted key that needs no unescaping.
func plainKey(q []byte) (string, bool) {
	inner, ok := PlainString(q)
	if !ok {
		return "", false
	}
	switch string(inner) { // the protocol's keys, without allocating
	case protocol.KeyOp:
		return protocol.KeyOp, true
	case protocol.KeyRef:
		return protocol.KeyRef, true
	}
	return string(inner), true
}

// PlainString returns the text inside q, a JSON string, when it needs no
// unescaping: printable ASCII without a backslash. ok is false otherwise,
// and for anything but a string.
func PlainString(q []byte) (inner []byte, ok bool) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return nil, false
	}
	inner = q[1 : len(q)-1]
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 || c >= utf8.RuneSelf {
			return nil, false
		}
	}
	return inner, true
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string that starts at i.
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index after the value that starts at i.
func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(data) {
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
		i++
	}
	return i
}

// RawField is one key of a flat JSON object, unquoted, and its raw value.
type RawField struct {
	Key, Value []byte
}

// SplitFlat splits data when it is a flat JSON object: keys and string
// values printable ASCII without escapes, every value a string, a number,
// true, false or null. The fields, slices of data, are appended to dst. It
// reports false for anything else, valid or not (nested values, escapes,
// text that is not JSON), which the caller then decodes with SplitObject:
// what SplitFlat accepts, it has checked to be valid JSON, so that the
// commonest messages are read in one pass with nothing allocated.
func SplitFlat(data []byte, dst []RawField) ([]RawField, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return dst, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return dst, skipSpace(data, i+1) == len(data)
	}
	for {
		key, next, ok := plainStringAt(data, i)
		if !ok {
			return dst, false
		}
		i = skipSpace(data, next)
		if i >= len(data) || data[i] != ':' {
			return dst, false
		}
		i = skipSpace(data, i+1)
		v0 := i
		if i, ok = flatValueAt(data, i); !ok {
			return dst, false
		}
		dst = append(dst, RawField{Key: key, Value: data[v0:i]})
		i = skipSpace(data, i)
		switch {
		case i >= len(data):
			return dst, false
		case data[i] == '}':
			return dst, skipSpace(data, i+1) == len(data)
		case data[i] != ',':
			return dst, false
		}
		i = skipSpace(data, i+1)
	}
}

// plainStringAt returns the inside of the plain string (see PlainString)
// that starts at i, and the index after it.
func plainStringAt(data []byte, i int) (inner []byte, next int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return data[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, j, false
		}
	}
	return nil, len(data), false
}

// flatValueAt returns the index after the plain string, number, true,
// false or null that starts at i.
func flatValueAt(data []byte, i int) (next int, ok bool) {
	if i >= len(data) {
		return i, false
	}
	switch data[i] {
	case '"':
		_, next, ok = plainStringAt(data, i)
		return next, ok
	case 't':
		return literalAt(data, i, "true")
	case 'f':
		return literalAt(data, i, "false")
	case 'n':
		return literalAt(data, i, "null")
	}
	return numberAt(data, i)
}

func literalAt(data []byte, i int, lit string) (int, bool) {
	if len(data)-i >= len(lit) && string(data[i:i+len(lit)]) == lit {
		return i + len(lit), true
	}
	return i, false
}

// numberAt returns the index after the JSON number that starts at i:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func numberAt(data []byte, i int) (int, bool) {
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		i = digitsAt(data, i)
	default:
		return i, false
	}
	if i < len(data) && data[i] == '.' {
		j := digitsAt(data, i+1)
		if j == i+1 {
			return i, false
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := digitsAt(data, i)
		if j == i {
			return i, false
		}
		i = j
	}
	return i, true
}

func digitsAt(data []byte, i int) int {
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		i++
	}
	return i
}

// FirstOp returns the op that data, a frame from a wszero server, begins
// with: {"op":"…", as the server writes every frame. ok is false when data
// does not begin so. A frame whose decoded op differs from its first one
// has a second op, which a decoder that keeps the last key would obey.
func FirstOp(data []byte) (op string, ok bool) {
	const start = `{"` + protocol.KeyOp + `":`
	if len(data) <= len(start) || string(data[:len(start)]) != start || data[len(start)] != '"' {
		return "", false
	}
	end := skipString(data, len(start))
	if inner, plain := PlainString(data[len(start):end]); plain {
		return string(inner), true
	}
	if json.Unmarshal(data[len(start):end], &op) != nil {
		return "", false
	}
	return op, true
}
