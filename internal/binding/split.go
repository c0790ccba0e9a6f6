package binding

import (
	"encoding/json"
	"unicode/utf8"
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
	case "op":
		return "op", true
	case "_ref":
		return "_ref", true
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
