package wszero

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// structBinder binds message keys to the fields of one struct type.
type structBinder struct {
	typ    reflect.Type // the struct type
	ptr    bool         // the handler takes *T rather than T
	fields []fieldBinder
	exact  map[string]int // wire name → index in fields
	folded map[string]int // lower-cased wire name and Go name → index
	names  []string       // wire names, for suggestions
}

// fieldBinder binds one key to one field.
type fieldBinder struct {
	key      string // the key in the message
	index    []int
	typ      reflect.Type
	required bool
	def      string // the default tag, when hasDef
	hasDef   bool
}

// newStructBinder prepares binding into t, a struct or pointer to struct.
// It fails when a default tag does not parse into its field's type.
func newStructBinder(t reflect.Type) (*structBinder, error) {
	b := &structBinder{typ: t, exact: map[string]int{}, folded: map[string]int{}}
	if t.Kind() == reflect.Pointer {
		b.typ, b.ptr = t.Elem(), true
	}
	for _, f := range reflect.VisibleFields(b.typ) {
		if !f.IsExported() || f.Anonymous && f.Type.Kind() == reflect.Struct || throughPointer(b.typ, f.Index) {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = lowerCamel(f.Name)
		}
		if !isUserKey(name) {
			return nil, fmt.Errorf("field %s would bind the key %q, which belongs to the protocol; give it another json name", f.Name, name)
		}
		fb := fieldBinder{key: name, index: f.Index, typ: f.Type}
		fb.def, fb.hasDef = f.Tag.Lookup("default")
		if fb.hasDef {
			if err := fb.setDefault(reflect.New(f.Type).Elem()); err != nil {
				return nil, fmt.Errorf("field %s has default:%q, which is not %s", f.Name, fb.def, describeType(f.Type))
			}
		}
		fb.required = f.Type.Kind() != reflect.Pointer && !hasOption(opts, "omitempty") && !fb.hasDef
		if _, dup := b.exact[name]; dup {
			return nil, fmt.Errorf("two fields bind the key %q", name)
		}
		i := len(b.fields)
		b.fields = append(b.fields, fb)
		b.exact[name] = i
		b.names = append(b.names, name)
		if _, taken := b.exact[f.Name]; !taken && tag == "" {
			b.exact[f.Name] = i
		}
		for _, alias := range []string{strings.ToLower(name), strings.ToLower(f.Name)} {
			if _, taken := b.folded[alias]; !taken {
				b.folded[alias] = i
			}
		}
	}
	return b, nil
}

// throughPointer reports whether a promoted field sits behind an embedded
// pointer, which binding would have to allocate; such fields are skipped.
func throughPointer(t reflect.Type, index []int) bool {
	for _, i := range index[:len(index)-1] {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Pointer {
			return true
		}
		t = f.Type
	}
	return false
}

// lowerCamel is how a browser would spell a Go field name: "Text" → "text",
// "PlayerID" → "playerID", "URLPath" → "urlPath".
func lowerCamel(name string) string {
	r := []rune(name)
	for i := 0; i < len(r) && unicode.IsUpper(r[i]); i++ {
		if i > 0 && i+1 < len(r) && unicode.IsLower(r[i+1]) {
			break
		}
		r[i] = unicode.ToLower(r[i])
	}
	return string(r)
}

func hasOption(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// setDefault stores the field's default tag into v.
func (fb *fieldBinder) setDefault(v reflect.Value) error {
	if v.Kind() == reflect.String {
		v.SetString(fb.def)
		return nil
	}
	return json.Unmarshal([]byte(fb.def), v.Addr().Interface())
}

// lookup finds the field for a key: its json name exactly, else any
// spelling of the json or Go name that differs only in case.
func (b *structBinder) lookup(key string) (int, bool) {
	if i, ok := b.exact[key]; ok {
		return i, true
	}
	i, ok := b.folded[strings.ToLower(key)]
	return i, ok
}

// bind fills a new value of the handler's parameter type from raw. The value
// is returned as a reflect.Value ready to pass to the handler.
func (b *structBinder) bind(op string, raw map[string]json.RawMessage) (reflect.Value, error) {
	ptr := reflect.New(b.typ)
	v := ptr.Elem()
	var seen []bool
	if len(b.fields) > 0 {
		seen = make([]bool, len(b.fields))
	}
	// Unknown keys first, in a stable order: a misspelt key explains the
	// missing one better than "missing" would.
	var unknown []string
	for k := range raw {
		if !isUserKey(k) {
			continue
		}
		if _, ok := b.lookup(k); !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return reflect.Value{}, b.unknownKey(op, unknown[0])
	}
	for k, r := range raw {
		if !isUserKey(k) {
			continue
		}
		i, _ := b.lookup(k)
		fb := &b.fields[i]
		if seen[i] {
			return reflect.Value{}, fmt.Errorf("%s got %q twice (as %q too): send it once", op, fb.key, k)
		}
		if isNull(r) {
			continue // null counts as absent
		}
		seen[i] = true
		field := v.FieldByIndex(fb.index)
		if err := json.Unmarshal(r, field.Addr().Interface()); err != nil {
			return reflect.Value{}, wrongType(op, fb.key, fb.typ, r, err)
		}
	}
	for i := range b.fields {
		fb := &b.fields[i]
		switch {
		case seen[i]:
		case fb.hasDef:
			if err := fb.setDefault(v.FieldByIndex(fb.index)); err != nil {
				return reflect.Value{}, fmt.Errorf("%s: the default for %q does not parse: %v", op, fb.key, err)
			}
		case fb.required:
			return reflect.Value{}, fmt.Errorf("%s needs %q: add it to the message, like {\"op\": %q, %q: %s}",
				op, fb.key, op, fb.key, exampleValue(fb.typ))
		}
	}
	if b.ptr {
		return ptr, nil
	}
	return v, nil
}

// unknownKey explains a key that no field takes.
func (b *structBinder) unknownKey(op, key string) error {
	if near := nearest(key, b.names); near != "" {
		return fmt.Errorf("%s got %q — did you mean %q?", op, key, near)
	}
	if len(b.names) == 0 {
		return fmt.Errorf("%s takes no keys, but got %q: send just {\"op\": %q}", op, key, op)
	}
	return fmt.Errorf("%s got %q, which it does not take: it takes %s", op, key, quoteList(b.names))
}

// wrongType explains that the value r of key cannot go into a t.
func wrongType(op, key string, t reflect.Type, r json.RawMessage, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" && te.Field != key && kindOfJSON(r) == kindOfType(t) {
		// The value has the right outer kind; something inside it does not fit.
		return fmt.Errorf("%s: %q should be %s, but %s inside it is %s", op, key, describeType(t), te.Field, describeTypeErrValue(te.Value))
	}
	if errors.As(err, &te) || kindOfJSON(r) != kindOfType(t) {
		return fmt.Errorf("%s: %q should be %s, but got %s", op, key, describeType(t), describeJSON(r))
	}
	return fmt.Errorf("%s: %q could not be read as %s: %v", op, key, describeType(t), err)
}

// describeType names a Go type the way a beginner would say it.
func describeType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int8, reflect.Int16, reflect.Int32:
		bits := t.Bits()
		return fmt.Sprintf("a whole number from %d to %d", -(int64(1) << (bits - 1)), int64(1)<<(bits-1)-1)
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return fmt.Sprintf("a whole number from 0 to %d", uint64(1)<<t.Bits()-1)
	case reflect.Uint, reflect.Uint64, reflect.Uintptr:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Interface {
			return "a list"
		}
		return "a list of " + plural(t.Elem())
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Interface:
		return "any value"
	}
	return "a " + t.String()
}

// plural names many values of t.
func plural(t reflect.Type) string {
	s := describeType(t)
	switch {
	case s == "true or false":
		return "true/false values"
	case strings.HasPrefix(s, "a whole number"):
		return "whole numbers" + strings.TrimPrefix(s, "a whole number")
	case strings.HasPrefix(s, "an "):
		return strings.TrimPrefix(s, "an ") + "s"
	case strings.HasPrefix(s, "a list"):
		return "lists"
	case strings.HasPrefix(s, "a "):
		return strings.TrimPrefix(s, "a ") + "s"
	}
	return s
}

// jsonKind is the outer kind of a JSON value or of what a Go type accepts.
type jsonKind uint8

const (
	kindAny jsonKind = iota
	kindString
	kindNumber
	kindBool
	kindList
	kindObject
	kindNull
)

func kindOfJSON(r []byte) jsonKind {
	if len(r) == 0 {
		return kindNull
	}
	switch r[0] {
	case '"':
		return kindString
	case 't', 'f':
		return kindBool
	case '[':
		return kindList
	case '{':
		return kindObject
	case 'n':
		return kindNull
	}
	return kindNumber
}

func kindOfType(t reflect.Type) jsonKind {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return kindString
	case reflect.Bool:
		return kindBool
	case reflect.Slice, reflect.Array:
		return kindList
	case reflect.Map, reflect.Struct:
		return kindObject
	case reflect.Interface:
		return kindAny
	}
	if t.Kind() >= reflect.Int && t.Kind() <= reflect.Float64 {
		return kindNumber
	}
	return kindAny
}

// describeJSON names a JSON value for a message, quoting short scalars.
func describeJSON(r []byte) string {
	switch kindOfJSON(r) {
	case kindString:
		var s string
		if json.Unmarshal(r, &s) == nil {
			return "the string " + shorten(s)
		}
		return "a string"
	case kindNumber:
		return string(shortenBytes(r))
	case kindBool:
		return string(r)
	case kindList:
		return "a list"
	case kindObject:
		return "an object"
	}
	return "null"
}

// describeTypeErrValue renders json.UnmarshalTypeError.Value ("string",
// "number 3.5", "array", …) in the words describeJSON uses.
func describeTypeErrValue(v string) string {
	switch {
	case v == "string":
		return "a string"
	case v == "array":
		return "a list"
	case v == "object":
		return "an object"
	case v == "bool":
		return "true or false"
	case strings.HasPrefix(v, "number "):
		return strings.TrimPrefix(v, "number ")
	}
	return v
}

// exampleValue is a sample value of t for a "like {…}" hint.
func exampleValue(t reflect.Type) string {
	switch kindOfType(t) {
	case kindString:
		return `"…"`
	case kindNumber:
		return "1"
	case kindBool:
		return "true"
	case kindList:
		return "[…]"
	case kindObject:
		return "{…}"
	}
	return "…"
}

func isNull(r []byte) bool { return len(r) == 4 && string(r) == "null" }

// isScalar reports whether r is a JSON number or string.
func isScalar(r []byte) bool {
	k := kindOfJSON(r)
	return k == kindNumber || k == kindString
}

// shorten quotes s, cut to a readable length.
func shorten(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	r := []rune(s)
	return fmt.Sprintf("%q…", string(r[:max]))
}

func shortenBytes(b []byte) []byte {
	if len(b) > 40 {
		return append(b[:40:40], "…"...)
	}
	return b
}

// nearest returns the candidate closest to word, or "" when none is close
// enough to be a likely typo.
func nearest(word string, candidates []string) string {
	best, bestDist := "", -1
	lw := strings.ToLower(word)
	for _, c := range candidates {
		d := editDistance(lw, strings.ToLower(c))
		if bestDist < 0 || d < bestDist || d == bestDist && c < best {
			best, bestDist = c, d
		}
	}
	if bestDist < 0 || bestDist > typoBudget(len(best)) {
		return ""
	}
	return best
}

// typoBudget is how many edits still look like a typo of a word of n letters.
func typoBudget(n int) int {
	switch {
	case n <= 3:
		return 1
	case n <= 8:
		return 2
	}
	return 3
}

// editDistance counts the insertions, deletions, substitutions and swaps of
// neighbouring letters that turn a into b (optimal string alignment).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
