package binding

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// structBinder binds message keys to the fields of one struct type.
type structBinder struct {
	typ    reflect.Type // the struct type
	ptr    bool         // the handler takes *T rather than T
	fields []fieldBinder
	exact  map[string]int // key → index in fields
	folded map[string]int // lower-cased key → index in fields
	names  []string       // the keys, in field order, for suggestions
	embeds [][]int        // embedded struct pointers to allocate, outermost first
}

// fieldBinder binds one key to one field.
type fieldBinder struct {
	key      string // the key in the message
	index    []int  // the field's index path, as reflect.Value.FieldByIndex takes
	typ      reflect.Type
	required bool
	def      string // the default tag, when hasDef
	hasDef   bool
	fast     bool // a plain string, bool or number: setFast may decode it
}

// newStructBinder prepares binding into t, a struct or pointer to struct.
// It fails when a field would bind a protocol key, when two fields bind the
// same key, or when a default tag does not parse into its field's type.
func newStructBinder(t reflect.Type) (*structBinder, error) {
	b := &structBinder{typ: t, exact: map[string]int{}, folded: map[string]int{}}
	if t.Kind() == reflect.Pointer {
		b.typ, b.ptr = t.Elem(), true
	}
	var opaque [][]int // embedded fields whose own fields are not promoted
	for _, f := range reflect.VisibleFields(b.typ) {
		if underAny(f.Index, opaque) {
			continue
		}
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && isStructOrPointerToStruct(f.Type) && name == "" && tag != "-" {
			// An embedded struct: its fields are promoted and bound one by
			// one, as encoding/json does. Behind an unexported pointer they
			// cannot be reached.
			if f.Type.Kind() == reflect.Pointer {
				if !f.IsExported() {
					opaque = append(opaque, f.Index)
					continue
				}
				b.embeds = append(b.embeds, f.Index)
			}
			continue
		}
		if f.Anonymous {
			opaque = append(opaque, f.Index)
		}
		if !f.IsExported() || tag == "-" {
			continue
		}
		if name == "" {
			name = LowerCamel(f.Name)
		}
		if !isUserKey(name) {
			return nil, fmt.Errorf("field %s would bind the key %q, but keys named \"op\" or starting with \"_\" belong to wszero; "+
				"give the field another name with a json tag, like `json:\"kind\"`", f.Name, name)
		}
		fb := fieldBinder{key: name, index: f.Index, typ: f.Type, fast: fastKind(f.Type)}
		fb.def, fb.hasDef = f.Tag.Lookup("default")
		if fb.hasDef {
			if err := fb.setDefault(reflect.New(f.Type).Elem()); err != nil {
				return nil, fmt.Errorf("field %s has default:%q, which is not %s", f.Name, fb.def, describeType(f.Type))
			}
		}
		fb.required = f.Type.Kind() != reflect.Pointer && !hasOption(opts, "omitempty") && !hasOption(opts, "omitzero") && !fb.hasDef
		if other, dup := b.exact[name]; dup {
			return nil, fmt.Errorf("fields %s and %s both bind the key %q; rename one with a json tag", b.fields[other].goName(b.typ), f.Name, name)
		}
		i := len(b.fields)
		b.fields = append(b.fields, fb)
		b.exact[name] = i
		b.names = append(b.names, name)
		if _, taken := b.folded[strings.ToLower(name)]; !taken {
			b.folded[strings.ToLower(name)] = i
		}
	}
	return b, nil
}

// goName is the Go name of the field, for messages to the programmer.
func (fb *fieldBinder) goName(t reflect.Type) string {
	return t.FieldByIndex(fb.index).Name
}

// isStructOrPointerToStruct reports whether t is a struct or points to one.
func isStructOrPointerToStruct(t reflect.Type) bool {
	return t.Kind() == reflect.Struct || t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct
}

// underAny reports whether the field at index lies inside one of the fields
// at prefixes.
func underAny(index []int, prefixes [][]int) bool {
	for _, p := range prefixes {
		if len(index) > len(p) && slices.Equal(index[:len(p)], p) {
			return true
		}
	}
	return false
}

// LowerCamel is how a browser would spell a Go field name: "Text" → "text",
// "PlayerID" → "playerID", "URLPath" → "urlPath".
func LowerCamel(name string) string {
	r := []rune(name)
	for i := 0; i < len(r) && unicode.IsUpper(r[i]); i++ {
		if i > 0 && i+1 < len(r) && unicode.IsLower(r[i+1]) {
			break
		}
		r[i] = unicode.ToLower(r[i])
	}
	return string(r)
}

// hasOption reports whether the comma-separated tag options hold want.
func hasOption(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// setDefault stores the field's default tag into v, the field: a string
// type takes the tag as it is, any other type parses it as JSON.
func (fb *fieldBinder) setDefault(v reflect.Value) error {
	for v.Kind() == reflect.Pointer {
		v.Set(reflect.New(v.Type().Elem()))
		v = v.Elem()
	}
	if v.Kind() == reflect.String {
		v.SetString(fb.def)
		return nil
	}
	return json.Unmarshal([]byte(fb.def), v.Addr().Interface())
}

// lookup finds the field for a key: the field's key exactly, else a
// spelling of it that differs only in case.
func (b *structBinder) lookup(key string) (int, bool) {
	if i, ok := b.exact[key]; ok {
		return i, true
	}
	i, ok := b.folded[strings.ToLower(key)]
	return i, ok
}

// bind fills a new value of the handler's parameter type from raw, and
// returns a pointer to it.
func (b *structBinder) bind(op string, raw map[string]json.RawMessage) (reflect.Value, error) {
	var room [16]string
	keys := room[:0]
	for k := range raw {
		if isUserKey(k) {
			keys = append(keys, k)
		}
	}
	ptr, err := b.fill(op, raw, keys)
	if err != nil {
		// Report the problem that the keys in sorted order meet first, so
		// that the same message always gets the same error.
		sort.Strings(keys)
		return b.fill(op, raw, keys)
	}
	return ptr, nil
}

// fill is bind, taking the keys meant for the handler in the order given.
func (b *structBinder) fill(op string, raw map[string]json.RawMessage, keys []string) (reflect.Value, error) {
	// Unknown keys first: a misspelt key explains the missing one better
	// than "missing" would.
	var room [16]keyValue
	kvs := room[:0]
	for _, k := range keys {
		i, ok := b.lookup(k)
		if !ok {
			return reflect.Value{}, b.unknownKey(op, k)
		}
		kvs = append(kvs, keyValue{field: i, key: k, raw: raw[k]})
	}
	return b.set(op, kvs)
}

// bindFlat is bind for the fields of a flat object (SplitFlat), taking the
// keys that are exactly a field's. It reports false, for the caller to
// bind the message with bind, when a key is not, or a value does not fit:
// bind then finds the same problem and words it.
func (b *structBinder) bindFlat(op string, fields []RawField) (reflect.Value, bool) {
	var room [16]keyValue
	kvs := room[:0]
	for _, f := range fields {
		if !isUserKey(string(f.Key)) {
			continue
		}
		i, ok := b.exact[string(f.Key)]
		if !ok {
			return reflect.Value{}, false
		}
		kvs = append(kvs, keyValue{field: i, key: b.fields[i].key, raw: f.Value})
	}
	ptr, err := b.set(op, kvs)
	return ptr, err == nil
}

// keyValue is one key of a message, the field it fills, and its value.
type keyValue struct {
	field int
	key   string // as sent
	raw   []byte
}

// set fills a new value of the handler's parameter type with kvs, checks
// that every required field came, and returns a pointer to the value.
func (b *structBinder) set(op string, kvs []keyValue) (reflect.Value, error) {
	ptr := reflect.New(b.typ)
	v := ptr.Elem()
	for _, index := range b.embeds {
		f := v.FieldByIndex(index)
		f.Set(reflect.New(f.Type().Elem()))
	}
	var room [16]string
	sentAs := room[:0] // the key that filled each field
	if len(b.fields) <= len(room) {
		sentAs = room[:len(b.fields)]
	} else {
		sentAs = make([]string, len(b.fields))
	}
	for _, kv := range kvs {
		fb := &b.fields[kv.field]
		if sentAs[kv.field] != "" {
			return reflect.Value{}, fmt.Errorf("%s got both %q and %q, which mean the same: send only %q", op, sentAs[kv.field], kv.key, fb.key)
		}
		if isNull(kv.raw) {
			continue // null counts as absent
		}
		sentAs[kv.field] = kv.key
		field := v.FieldByIndex(fb.index)
		if fb.fast && setFast(field, kv.raw) {
			continue
		}
		if err := json.Unmarshal(kv.raw, field.Addr().Interface()); err != nil {
			return reflect.Value{}, wrongType(op, fb.key, fb.typ, kv.raw, err)
		}
	}
	for i := range b.fields {
		fb := &b.fields[i]
		switch {
		case sentAs[i] != "":
		case fb.hasDef:
			_ = fb.setDefault(v.FieldByIndex(fb.index)) // newStructBinder checked that it parses
		case fb.required:
			return reflect.Value{}, fmt.Errorf("%s needs %q: add it to the message, like {\"op\": %q, %q: %s}",
				op, fb.key, op, fb.key, exampleValue(fb.typ))
		}
	}
	return ptr, nil
}

// userKeys returns the keys of raw meant for the handler, sorted, so that
// the first problem reported is the same every time.
func userKeys(raw map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(raw))
	for k := range raw {
		if isUserKey(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// unknownKey explains a key that no field takes.
func (b *structBinder) unknownKey(op, key string) error {
	if near := Nearest(key, b.names); near != "" {
		return fmt.Errorf("%s got %s — did you mean %q?", op, Shorten(key), near)
	}
	if len(b.names) == 0 {
		return noKeysWanted(op, key)
	}
	return fmt.Errorf("%s got %s, which it does not take: it takes %s", op, Shorten(key), QuoteList(b.names))
}

// wrongType explains why the value r of key cannot go into a t; err is what
// json.Unmarshal said.
func wrongType(op, key string, t reflect.Type, r json.RawMessage, err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		// A type's own UnmarshalJSON or UnmarshalText refused the value.
		return fmt.Errorf("%s: %q could not be read as %s: %v", op, key, describeType(t), err)
	}
	n, why, misfit := numberMisfit(te)
	switch {
	case misfit && isInterface(t):
		// Only a number too big for a float64 fails to go into an any.
		return fmt.Errorf("%s: %q holds the number %s, which %s", op, key, n, why)
	case te.Field != "":
		// A field of an object inside the value.
		return fmt.Errorf("%s: in %q, %q should be %s, but %s", op, key, te.Field, describeType(te.Type), butGot(te, ""))
	case kindOfJSON(r) == kindOfType(t) && (kindOfType(t) == kindList || kindOfType(t) == kindObject):
		// The value has the right outer kind; something inside it does not fit.
		held := describeTypeErrValue(te.Value)
		if misfit && why != "" {
			held = n + ", which " + why
		}
		return fmt.Errorf("%s: %q should be %s, but it holds %s", op, key, describeType(t), held)
	}
	return fmt.Errorf("%s: %q should be %s, but %s%s", op, key, describeType(t), butGot(te, DescribeJSON(r)), quotedHint(key, t, r))
}

// quotedHint explains, when r is a string that holds what t wants (a
// number, true or false), how to send the value itself: to a child, "3" is
// a number, and a text box's value is always a string.
func quotedHint(key string, t reflect.Type, r json.RawMessage) string {
	var text string
	if kindOfJSON(r) != kindString || json.Unmarshal(r, &text) != nil {
		return ""
	}
	text = strings.TrimSpace(text)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case kindOfType(t) == kindNumber:
		if _, err := strconv.ParseFloat(text, 64); err != nil {
			return ""
		}
		return fmt.Sprintf(`. Send it as a number, without quotes, like {%q: %s}; a text box's value is text, so in JavaScript write Number(input.value)`, key, text)
	case t.Kind() == reflect.Bool && (text == "true" || text == "false"):
		return fmt.Sprintf(`. Send it without quotes, like {%q: %s}; in JavaScript, a checkbox's checkbox.checked is true or false already`, key, text)
	}
	return ""
}

// butGot completes "… should be <te.Type>, but …". shown, when not empty,
// names the value better than te does.
func butGot(te *json.UnmarshalTypeError, shown string) string {
	if n, why, ok := numberMisfit(te); ok && why != "" {
		return n + " " + why
	}
	if shown == "" {
		shown = describeTypeErrValue(te.Value)
	}
	return "got " + shown
}

// numberMisfit tells, when te is about a number that does not fit a number
// type, the number (shortened) and why it does not fit: "is too big", "is
// too small", …; why is "" for a fraction, where showing it says enough.
func numberMisfit(te *json.UnmarshalTypeError) (n, why string, ok bool) {
	n, ok = strings.CutPrefix(te.Value, "number ")
	t := te.Type
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if !ok || kindOfType(t) != kindNumber {
		return "", "", false
	}
	f, err := strconv.ParseFloat(n, 64)
	tooFar := err != nil // out of a float64's range
	switch k := t.Kind(); {
	case k >= reflect.Int && k <= reflect.Int64:
		lim := math.Ldexp(1, t.Bits()-1)
		tooFar = tooFar || f >= lim || f < -lim
	case k >= reflect.Uint && k <= reflect.Uintptr:
		tooFar = tooFar || f >= math.Ldexp(1, t.Bits()) || f < 0
	default:
		tooFar = true // the only number a float cannot take is one out of its range
	}
	switch {
	case tooFar && strings.HasPrefix(n, "-"):
		why = "is too small"
	case tooFar:
		why = "is too big"
	case f != math.Trunc(f):
		// A fraction: "got 3.5" says it all.
	default:
		if f == 0 {
			f = 0 // not -0
		}
		why = "is not written as a whole number: write it with digits only, like " + strconv.FormatFloat(f, 'f', -1, 64)
	}
	return shortenNumber(n), why, true
}

// isInterface reports whether t, or what t points to, is an interface type.
func isInterface(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Interface
}

// describeType names a Go type the way a beginner would say it.
func describeType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if hasOwnUnmarshal(t) {
		return "a " + t.String()
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

// hasOwnUnmarshal reports whether t decodes itself from JSON or text, as
// time.Time does, so that its JSON kind cannot be told from its Go kind.
func hasOwnUnmarshal(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(jsonUnmarshalerType) || p.Implements(textUnmarshalerType)
}

var (
	jsonUnmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

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

// kindOfJSON returns the kind of the JSON value r.
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

// kindOfType returns the kind of JSON value that fits a t.
func kindOfType(t reflect.Type) jsonKind {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if hasOwnUnmarshal(t) {
		return kindAny
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
	}
	if t.Kind() >= reflect.Int && t.Kind() <= reflect.Float64 {
		return kindNumber
	}
	return kindAny
}

// DescribeJSON names a JSON value for a message, quoting short scalars.
func DescribeJSON(r []byte) string {
	switch kindOfJSON(r) {
	case kindString:
		var s string
		_ = json.Unmarshal(r, &s) // r is valid JSON
		return "the string " + Shorten(s)
	case kindNumber:
		return shortenNumber(string(r))
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
		return "a true/false value"
	case v == "number":
		return "a number"
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

// isNull reports whether the JSON value r is null.
func isNull(r []byte) bool { return string(r) == "null" }

// IsScalar reports whether r is a JSON number or string.
func IsScalar(r []byte) bool {
	k := kindOfJSON(r)
	return k == kindNumber || k == kindString
}

// Shorten quotes s, cut to a readable length.
func Shorten(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	r := []rune(s)
	return fmt.Sprintf("%q…", string(r[:max]))
}

// shortenNumber cuts s, a JSON number, to a readable length.
func shortenNumber(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Nearest returns the candidate closest to word, or "" when none is close
// enough to be a likely typo.
func Nearest(word string, candidates []string) string {
	if word == "" {
		return ""
	}
	best, bestDist := "", -1
	lw := strings.ToLower(word)
	for _, c := range candidates {
		d := EditDistance(lw, strings.ToLower(c))
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

// EditDistance counts the insertions, deletions, substitutions and swaps of
// neighbouring letters that turn a into b (optimal string alignment).
func EditDistance(a, b string) int {
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

var jsonNumberType = reflect.TypeOf(json.Number(""))

// fastKind reports whether values of t are plain strings, bools or
// numbers, which setFast decodes as encoding/json would.
func fastKind(t reflect.Type) bool {
	if hasOwnUnmarshal(t) || t == jsonNumberType {
		return false
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// setFast decodes the commonest values straight into v, a field of a fast
// kind: an ASCII string with no escapes, true or false, a whole number
// that fits, a number for a float. It reports false for anything else,
// and the caller then decodes r with encoding/json, for the value or for
// the error.
func setFast(v reflect.Value, r []byte) bool {
	switch v.Kind() {
	case reflect.String:
		if len(r) < 2 || r[0] != '"' || r[len(r)-1] != '"' {
			return false
		}
		inner := r[1 : len(r)-1]
		for _, c := range inner {
			if c == '\\' || c == '"' || c < 0x20 || c >= utf8.RuneSelf {
				return false
			}
		}
		v.SetString(string(inner))
		return true
	case reflect.Bool:
		switch string(r) {
		case "true":
			v.SetBool(true)
			return true
		case "false":
			v.SetBool(false)
			return true
		}
		return false
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		neg := len(r) > 0 && r[0] == '-'
		digits := r
		if neg {
			digits = r[1:]
		}
		n, ok := parseDigits(digits)
		if !ok || n > 1<<63 || !neg && n == 1<<63 {
			return false
		}
		i := int64(n)
		if neg {
			i = -i
		}
		if v.OverflowInt(i) {
			return false
		}
		v.SetInt(i)
		return true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := parseDigits(r)
		if !ok || v.OverflowUint(n) {
			return false
		}
		v.SetUint(n)
		return true
	case reflect.Float32, reflect.Float64:
		if len(r) == 0 || r[0] != '-' && (r[0] < '0' || r[0] > '9') {
			return false
		}
		f, err := strconv.ParseFloat(string(r), v.Type().Bits())
		if err != nil || v.OverflowFloat(f) {
			return false
		}
		v.SetFloat(f)
		return true
	}
	return false
}

// parseDigits parses a JSON whole number without a sign: digits only, no
// leading zero, at most 19 of them so that it cannot overflow.
func parseDigits(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 || len(b) > 1 && b[0] == '0' {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}
