package wszero

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero/internal/binding"
)

// capture makes a handler taking a T that reports what it got on got.
func capture[T any](got chan<- any) any {
	return func(c *Client, p T) { got <- p }
}

// noParams makes a handler that takes nothing and reports that it ran.
func noParams(got chan<- any) any {
	return func(c *Client) { got <- "ran" }
}

// Parameter types for the binding tests.
type (
	textMsg     struct{ Text string }
	announceMsg struct{ Text, Channel string }
	roomMsg     struct {
		Channel string `json:"room"`
	}
	playerMsg struct{ PlayerID int }
	point     struct {
		X int `json:"x"`
		Y int `json:"y"`
	}
	optionalMsg struct {
		Text    string
		Channel *string
		Count   int    `json:"count,omitempty"`
		Note    string `json:",omitempty"`
		Later   int    `json:"later,omitzero"`
	}
	defaultsMsg struct {
		S  string   `default:"hi"`
		I  int      `default:"3"`
		F  float64  `default:"2.5"`
		B  bool     `default:"true"`
		L  []string `default:"[\"a\",\"b\"]"`
		P  *int     `default:"4"`
		PS *string  `default:"x y"`
	}
	base struct {
		Name string
		Age  int `json:"age,omitempty"`
	}
	Base     base
	embedded struct {
		Base
		Text string
	}
	embeddedPointer struct {
		*Base
		Text string
	}
	embeddedUnexported struct {
		base
		Text string
	}
	embeddedTagged struct {
		Base `json:"who"`
		Text string
	}
	embeddedShadowed struct {
		Base
		Name string `json:"name"`
	}
)

func ptr[T any](v T) *T { return &v }

// bindCase sends params (a JSON object, without "op") to a handler for
// "announce" made by handler, and expects it to receive want, or the
// sender to get wantErr and the handler not to run.
type bindCase struct {
	name    string
	handler func(got chan<- any) any
	params  string
	want    any
	wantErr string
}

func runBindCases(t *testing.T, cases []bindCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, ts := newTestServer(t)
			got := make(chan any, 1)
			s.On("announce", tc.handler(got))
			p := dial(t, ts)
			msg := `{"op":"announce","_ref":1`
			if body := strings.TrimSpace(tc.params[1 : len(tc.params)-1]); body != "" {
				msg += "," + body
			}
			p.send(msg + "}")
			reply := p.read()
			if tc.wantErr != "" {
				require.Equal(t, map[string]any{"op": "error", "_ref": 1.0, "msg": tc.wantErr, "for": "announce"}, reply)
				require.Empty(t, got, "the handler must not run")
				return
			}
			require.Equal(t, map[string]any{"op": "_reply", "_ref": 1.0, "result": nil}, reply)
			require.Equal(t, tc.want, received(t, got))
		})
	}
}

func TestBindKeyNames(t *testing.T) {
	runBindCases(t, []bindCase{
		{name: "json tag", handler: capture[roomMsg], params: `{"room":"a"}`, want: roomMsg{"a"}},
		{name: "json tag in capitals", handler: capture[roomMsg], params: `{"ROOM":"a"}`, want: roomMsg{"a"}},
		{name: "the Go name of a tagged field is not a key", handler: capture[roomMsg], params: `{"channel":"a"}`,
			wantErr: `announce got "channel", which it does not take: it takes "room"`},
		{name: "lower case", handler: capture[textMsg], params: `{"text":"hi"}`, want: textMsg{"hi"}},
		{name: "Go spelling", handler: capture[textMsg], params: `{"Text":"hi"}`, want: textMsg{"hi"}},
		{name: "capitals", handler: capture[textMsg], params: `{"TEXT":"hi"}`, want: textMsg{"hi"}},
		{name: "mixed case", handler: capture[textMsg], params: `{"tExT":"hi"}`, want: textMsg{"hi"}},
		{name: "initialism lowerCamel", handler: capture[playerMsg], params: `{"playerID":7}`, want: playerMsg{7}},
		{name: "initialism lower case", handler: capture[playerMsg], params: `{"playerid":7}`, want: playerMsg{7}},
		{name: "initialism Go spelling", handler: capture[playerMsg], params: `{"PlayerID":7}`, want: playerMsg{7}},
		{name: "two spellings of one key", handler: capture[textMsg], params: `{"text":"a","Text":"b"}`,
			wantErr: `announce got both "Text" and "text", which mean the same: send only "text"`},
		{name: "keys starting with _ are the protocol's", handler: capture[textMsg], params: `{"text":"hi","_trace":"x","_":1}`, want: textMsg{"hi"}},
		{name: "Params get every key but op and _ keys", handler: capture[Params], params: `{"a":1,"B":"x","_meta":{"x":1},"list":[1,null]}`,
			want: Params{"a": 1.0, "B": "x", "list": []any{1.0, nil}}},
		{name: "Params may be empty", handler: capture[Params], params: `{}`, want: Params{}},
		{name: "map[string]any like Params", handler: capture[map[string]any], params: `{"a":{"b":true},"_x":1}`,
			want: map[string]any{"a": map[string]any{"b": true}}},
		{name: "pointer to struct", handler: capture[*textMsg], params: `{"text":"hi"}`, want: &textMsg{"hi"}},
	})
}

func TestBindRequiredOptionalAndDefaults(t *testing.T) {
	runBindCases(t, []bindCase{
		{name: "missing string", handler: capture[textMsg], params: `{}`,
			wantErr: `announce needs "text": add it to the message, like {"op": "announce", "text": "…"}`},
		{name: "null is absent", handler: capture[textMsg], params: `{"text":null}`,
			wantErr: `announce needs "text": add it to the message, like {"op": "announce", "text": "…"}`},
		{name: "missing number", handler: capture[pair], params: `{"a":1}`,
			wantErr: `announce needs "b": add it to the message, like {"op": "announce", "b": 1}`},
		{name: "missing bool", handler: capture[struct{ On bool }], params: `{}`,
			wantErr: `announce needs "on": add it to the message, like {"op": "announce", "on": true}`},
		{name: "missing list", handler: capture[struct{ Tags []string }], params: `{}`,
			wantErr: `announce needs "tags": add it to the message, like {"op": "announce", "tags": […]}`},
		{name: "missing object", handler: capture[struct{ Pos point }], params: `{}`,
			wantErr: `announce needs "pos": add it to the message, like {"op": "announce", "pos": {…}}`},
		{name: "missing any", handler: capture[struct{ Value any }], params: `{}`,
			wantErr: `announce needs "value": add it to the message, like {"op": "announce", "value": …}`},
		{name: "empty values are present", handler: capture[struct {
			S string
			N int
			L []int
		}], params: `{"s":"","n":0,"l":[]}`, want: struct {
			S string
			N int
			L []int
		}{"", 0, []int{}}},

		{name: "optional keys absent", handler: capture[optionalMsg], params: `{"text":"hi"}`, want: optionalMsg{Text: "hi"}},
		{name: "optional keys null", handler: capture[optionalMsg], params: `{"text":"hi","channel":null,"count":null}`, want: optionalMsg{Text: "hi"}},
		{name: "optional keys given", handler: capture[optionalMsg], params: `{"text":"hi","channel":"x","count":3,"note":"n","later":2}`,
			want: optionalMsg{Text: "hi", Channel: ptr("x"), Count: 3, Note: "n", Later: 2}},

		{name: "defaults", handler: capture[defaultsMsg], params: `{}`,
			want: defaultsMsg{S: "hi", I: 3, F: 2.5, B: true, L: []string{"a", "b"}, P: ptr(4), PS: ptr("x y")}},
		{name: "defaults for null", handler: capture[defaultsMsg], params: `{"s":null,"i":null,"f":null,"b":null,"l":null,"p":null,"ps":null}`,
			want: defaultsMsg{S: "hi", I: 3, F: 2.5, B: true, L: []string{"a", "b"}, P: ptr(4), PS: ptr("x y")}},
		{name: "values beat defaults", handler: capture[defaultsMsg], params: `{"s":"","i":0,"f":0,"b":false,"l":[],"p":0,"ps":""}`,
			want: defaultsMsg{S: "", I: 0, F: 0, B: false, L: []string{}, P: ptr(0), PS: ptr("")}},
	})
}

func TestBindNumbersThatDoNotFit(t *testing.T) {
	long := "1" + strings.Repeat("0", 50)
	runBindCases(t, []bindCase{
		{name: "fraction into int", handler: capture[struct{ N int }], params: `{"n":3.5}`,
			wantErr: `announce: "n" should be a whole number, but got 3.5`},
		{name: "2.0 into int", handler: capture[struct{ N int }], params: `{"n":2.0}`,
			wantErr: `announce: "n" should be a whole number, but 2.0 is not written as a whole number: write it with digits only, like 2`},
		{name: "1e2 into int", handler: capture[struct{ N int }], params: `{"n":1e2}`,
			wantErr: `announce: "n" should be a whole number, but 1e2 is not written as a whole number: write it with digits only, like 100`},
		{name: "-0.0 into int", handler: capture[struct{ N int }], params: `{"n":-0.0}`,
			wantErr: `announce: "n" should be a whole number, but -0.0 is not written as a whole number: write it with digits only, like 0`},
		{name: "1e400 into int", handler: capture[struct{ N int }], params: `{"n":1e400}`,
			wantErr: `announce: "n" should be a whole number, but 1e400 is too big`},
		{name: "2^63 into int64", handler: capture[struct{ N int64 }], params: `{"n":9223372036854775808}`,
			wantErr: `announce: "n" should be a whole number, but 9223372036854775808 is too big`},
		{name: "largest int64", handler: capture[struct{ N int64 }], params: `{"n":9223372036854775807}`, want: struct{ N int64 }{9223372036854775807}},
		{name: "smallest int64", handler: capture[struct{ N int64 }], params: `{"n":-9223372036854775808}`, want: struct{ N int64 }{-9223372036854775808}},
		{name: "300 into int8", handler: capture[struct{ N int8 }], params: `{"n":300}`,
			wantErr: `announce: "n" should be a whole number from -128 to 127, but 300 is too big`},
		{name: "-129 into int8", handler: capture[struct{ N int8 }], params: `{"n":-129}`,
			wantErr: `announce: "n" should be a whole number from -128 to 127, but -129 is too small`},
		{name: "-128 into int8", handler: capture[struct{ N int8 }], params: `{"n":-128}`, want: struct{ N int8 }{-128}},
		{name: "-1 into uint", handler: capture[struct{ N uint }], params: `{"n":-1}`,
			wantErr: `announce: "n" should be a whole number, 0 or more, but -1 is too small`},
		{name: "256 into uint8", handler: capture[struct{ N uint8 }], params: `{"n":256}`,
			wantErr: `announce: "n" should be a whole number from 0 to 255, but 256 is too big`},
		{name: "70000 into *uint16", handler: capture[struct{ N *uint16 }], params: `{"n":70000}`,
			wantErr: `announce: "n" should be a whole number from 0 to 65535, but 70000 is too big`},
		{name: "1e400 into float64", handler: capture[struct{ X float64 }], params: `{"x":1e400}`,
			wantErr: `announce: "x" should be a number, but 1e400 is too big`},
		{name: "-1e400 into float64", handler: capture[struct{ X float64 }], params: `{"x":-1e400}`,
			wantErr: `announce: "x" should be a number, but -1e400 is too small`},
		{name: "1e39 into float32", handler: capture[struct{ X float32 }], params: `{"x":1e39}`,
			wantErr: `announce: "x" should be a number, but 1e39 is too big`},
		{name: "1e-400 into float64 is 0", handler: capture[struct{ X float64 }], params: `{"x":1e-400}`, want: struct{ X float64 }{0}},
		{name: "a long number is shortened", handler: capture[struct{ N int32 }], params: `{"n":` + long + `}`,
			wantErr: `announce: "n" should be a whole number from -2147483648 to 2147483647, but ` + long[:40] + `… is too big`},
		{name: "1e400 into Params", handler: capture[Params], params: `{"x":1e400}`,
			wantErr: `announce: "x" holds the number 1e400, which is too big`},
		{name: "1e400 deep in Params", handler: capture[Params], params: `{"x":{"y":[1,-1e400]}}`,
			wantErr: `announce: "x" holds the number -1e400, which is too small`},
		{name: "1e400 into any", handler: capture[struct{ V any }], params: `{"v":1e400}`,
			wantErr: `announce: "v" holds the number 1e400, which is too big`},
		{name: "1e400 into []any", handler: capture[struct{ V []any }], params: `{"v":["a",1e400]}`,
			wantErr: `announce: "v" should be a list, but it holds 1e400, which is too big`},
		{name: "1e400 into a list of numbers", handler: capture[struct{ L []float64 }], params: `{"l":[1e400]}`,
			wantErr: `announce: "l" should be a list of numbers, but it holds 1e400, which is too big`},
		{name: "fraction in a list of whole numbers", handler: capture[struct{ L []int }], params: `{"l":[1,2.5]}`,
			wantErr: `announce: "l" should be a list of whole numbers, but it holds 2.5`},
		{name: "fraction in an object", handler: capture[struct{ Pos point }], params: `{"pos":{"x":0.5,"y":1}}`,
			wantErr: `announce: in "pos", "x" should be a whole number, but got 0.5`},
	})
}

func TestBindWrongTypes(t *testing.T) {
	runBindCases(t, []bindCase{
		{name: "string into int", handler: capture[struct{ N int }], params: `{"n":"five"}`,
			wantErr: `announce: "n" should be a whole number, but got the string "five"`},
		{name: "a string that holds a whole number", handler: capture[struct{ Times int }], params: `{"times":"3"}`,
			wantErr: `announce: "times" should be a whole number, but got the string "3". Send it as a number, without quotes, like {"times": 3}; a text box's value is text, so in JavaScript write Number(input.value)`},
		{name: "a string that holds a number, with spaces", handler: capture[struct{ Speed float64 }], params: `{"speed":" 2.5 "}`,
			wantErr: `announce: "speed" should be a number, but got the string " 2.5 ". Send it as a number, without quotes, like {"speed": 2.5}; a text box's value is text, so in JavaScript write Number(input.value)`},
		{name: "a string that holds a number, into a pointer", handler: capture[struct{ N *uint8 }], params: `{"n":"7"}`,
			wantErr: `announce: "n" should be a whole number from 0 to 255, but got the string "7". Send it as a number, without quotes, like {"n": 7}; a text box's value is text, so in JavaScript write Number(input.value)`},
		{name: "a string that holds true", handler: capture[struct{ On bool }], params: `{"on":"true"}`,
			wantErr: `announce: "on" should be true or false, but got the string "true". Send it without quotes, like {"on": true}; in JavaScript, a checkbox's checkbox.checked is true or false already`},
		{name: "number into string", handler: capture[textMsg], params: `{"text":5}`,
			wantErr: `announce: "text" should be a string, but got 5`},
		{name: "bool into string", handler: capture[textMsg], params: `{"text":true}`,
			wantErr: `announce: "text" should be a string, but got true`},
		{name: "list into string", handler: capture[textMsg], params: `{"text":["a"]}`,
			wantErr: `announce: "text" should be a string, but got a list`},
		{name: "object into string", handler: capture[textMsg], params: `{"text":{"a":1}}`,
			wantErr: `announce: "text" should be a string, but got an object`},
		{name: "long string is shortened", handler: capture[struct{ N int }], params: `{"n":"` + strings.Repeat("é", 45) + `"}`,
			wantErr: `announce: "n" should be a whole number, but got the string "` + strings.Repeat("é", 40) + `"…`},
		{name: "string into bool", handler: capture[struct{ On bool }], params: `{"on":"yes"}`,
			wantErr: `announce: "on" should be true or false, but got the string "yes"`},
		{name: "number into bool", handler: capture[struct{ On bool }], params: `{"on":1}`,
			wantErr: `announce: "on" should be true or false, but got 1`},
		{name: "object into list", handler: capture[struct{ Tags []string }], params: `{"tags":{"a":1}}`,
			wantErr: `announce: "tags" should be a list of strings, but got an object`},
		{name: "string into list", handler: capture[struct{ Tags []string }], params: `{"tags":"a,b"}`,
			wantErr: `announce: "tags" should be a list of strings, but got the string "a,b"`},
		{name: "list into object", handler: capture[struct{ Pos point }], params: `{"pos":[1,2]}`,
			wantErr: `announce: "pos" should be an object, but got a list`},
		{name: "list into map", handler: capture[struct{ Scores map[string]int }], params: `{"scores":[1]}`,
			wantErr: `announce: "scores" should be an object, but got a list`},
		{name: "number into pointer to object", handler: capture[struct{ Pos *point }], params: `{"pos":3}`,
			wantErr: `announce: "pos" should be an object, but got 3`},
		{name: "number in a list of strings", handler: capture[struct{ Tags []string }], params: `{"tags":["a",1]}`,
			wantErr: `announce: "tags" should be a list of strings, but it holds a number`},
		{name: "string in a list of whole numbers", handler: capture[struct{ L []int }], params: `{"l":[1,"2"]}`,
			wantErr: `announce: "l" should be a list of whole numbers, but it holds a string`},
		{name: "wrong type in a list of lists", handler: capture[struct{ Grid [][]int }], params: `{"grid":[[1],["a"]]}`,
			wantErr: `announce: "grid" should be a list of lists, but it holds a string`},
		{name: "wrong type in a map", handler: capture[struct{ Scores map[string]int }], params: `{"scores":{"ann":"ten"}}`,
			wantErr: `announce: "scores" should be an object, but it holds a string`},
		{name: "wrong type in an object", handler: capture[struct{ Pos point }], params: `{"pos":{"x":"a","y":1}}`,
			wantErr: `announce: in "pos", "x" should be a whole number, but got a string`},
		{name: "wrong type in an object in a list", handler: capture[struct{ Pts []point }], params: `{"pts":[{"x":1},{"x":true}]}`,
			wantErr: `announce: in "pts", "x" should be a whole number, but got a true/false value`},
		{name: "wrong type in an object in an object", handler: capture[struct {
			Box struct{ Corner point }
		}], params: `{"box":{"corner":{"y":[]}}}`,
			wantErr: `announce: in "box", "Corner.y" should be a whole number, but got a list`},
		{name: "the first wrong key in alphabetical order", handler: capture[struct{ A, B, C int }], params: `{"c":"x","b":"y","a":true}`,
			wantErr: `announce: "a" should be a whole number, but got true`},
		{name: "a type's own decoder refuses", handler: capture[struct{ When textTime }], params: `{"when":"soon"}`,
			wantErr: `announce: "when" could not be read as a wszero.textTime: "soon" is not a time like "15:04"`},
		{name: "a type's own decoder gets a number", handler: capture[struct{ When textTime }], params: `{"when":5}`,
			wantErr: `announce: "when" should be a wszero.textTime, but got 5`},
		{name: "a type's own decoder accepts", handler: capture[struct{ When textTime }], params: `{"when":"15:04"}`,
			want: struct{ When textTime }{"15:04"}},
	})
}

// textTime decodes itself from text.
type textTime string

func (t *textTime) UnmarshalText(b []byte) error {
	if len(b) != 5 || b[2] != ':' {
		return &timeError{string(b)}
	}
	*t = textTime(b)
	return nil
}

type timeError struct{ s string }

func (e *timeError) Error() string { return `"` + e.s + `" is not a time like "15:04"` }

func TestBindUnknownKeys(t *testing.T) {
	runBindCases(t, []bindCase{
		{name: "typo", handler: capture[announceMsg], params: `{"text":"hi","chanel":"x"}`,
			wantErr: `announce got "chanel" — did you mean "channel"?`},
		{name: "swapped letters", handler: capture[announceMsg], params: `{"txet":"hi","channel":"x"}`,
			wantErr: `announce got "txet" — did you mean "text"?`},
		{name: "unknown before missing", handler: capture[announceMsg], params: `{"chanel":"x"}`,
			wantErr: `announce got "chanel" — did you mean "channel"?`},
		{name: "no close match", handler: capture[announceMsg], params: `{"text":"hi","channel":"x","colour":"red"}`,
			wantErr: `announce got "colour", which it does not take: it takes "text" and "channel"`},
		{name: "first unknown in alphabetical order", handler: capture[announceMsg], params: `{"zebra":1,"apple":2,"text":"","channel":""}`,
			wantErr: `announce got "apple", which it does not take: it takes "text" and "channel"`},
		{name: "long unknown key is shortened", handler: capture[textMsg], params: `{"` + strings.Repeat("k", 60) + `":1}`,
			wantErr: `announce got "` + strings.Repeat("k", 40) + `"…, which it does not take: it takes "text"`},
		{name: "empty key", handler: capture[pair], params: `{"":1}`,
			wantErr: `announce got "", which it does not take: it takes "a" and "b"`},
		{name: "empty struct", handler: capture[struct{}], params: `{"x":1}`,
			wantErr: `announce takes no keys, but got "x": send just {"op": "announce"}`},
		{name: "empty struct, protocol keys only", handler: capture[struct{}], params: `{"_x":1}`, want: struct{}{}},
		{name: "no parameter", handler: noParams, params: `{"x":1,"a":2}`,
			wantErr: `announce takes no keys, but got "a": send just {"op": "announce"}`},
		{name: "no parameter, null key", handler: noParams, params: `{"x":null}`,
			wantErr: `announce takes no keys, but got "x": send just {"op": "announce"}`},
		{name: "no parameter, protocol keys only", handler: noParams, params: `{"_trace":[1]}`, want: "ran"},
	})
}

func TestBindEmbeddedStructs(t *testing.T) {
	runBindCases(t, []bindCase{
		{name: "promoted fields", handler: capture[embedded], params: `{"name":"Ann","age":11,"text":"hi"}`,
			want: embedded{Base: Base{Name: "Ann", Age: 11}, Text: "hi"}},
		{name: "promoted field required", handler: capture[embedded], params: `{"text":"hi"}`,
			wantErr: `announce needs "name": add it to the message, like {"op": "announce", "name": "…"}`},
		{name: "promoted field typo", handler: capture[embedded], params: `{"nmae":"Ann","text":"hi"}`,
			wantErr: `announce got "nmae" — did you mean "name"?`},
		{name: "through a pointer", handler: capture[embeddedPointer], params: `{"name":"Ann","text":"hi"}`,
			want: embeddedPointer{Base: &Base{Name: "Ann"}, Text: "hi"}},
		{name: "through an unexported struct", handler: capture[embeddedUnexported], params: `{"name":"Ann","text":"hi"}`,
			want: embeddedUnexported{base: base{Name: "Ann"}, Text: "hi"}},
		{name: "a tagged embedded struct is one key", handler: capture[embeddedTagged], params: `{"who":{"name":"Ann"},"text":"hi"}`,
			want: embeddedTagged{Base: Base{Name: "Ann"}, Text: "hi"}},
		{name: "a tagged embedded struct's fields are not keys", handler: capture[embeddedTagged], params: `{"name":"Ann","text":"hi"}`,
			wantErr: `announce got "name", which it does not take: it takes "who" and "text"`},
		{name: "not through an unexported pointer", handler: capture[struct {
			*point
			Text string
		}], params: `{"x":1,"text":"hi"}`,
			wantErr: `announce got "x", which it does not take: it takes "text"`},
		{name: "the outer field wins", handler: capture[embeddedShadowed], params: `{"name":"Ann","age":3}`,
			want: embeddedShadowed{Base: Base{Age: 3}, Name: "Ann"}},
	})
}

func TestBindDefaultsAreFreshEachTime(t *testing.T) {
	s, ts := newTestServer(t)
	s.On("add", func(c *Client, p struct {
		L []string `default:"[\"a\"]"`
	}) []string {
		p.L[0] = "changed"
		return append(p.L, "more")
	})
	p := dial(t, ts)
	for ref := 1; ref <= 3; ref++ {
		require.Equal(t, []any{"changed", "more"}, p.call(ref, map[string]any{"op": "add"})["result"])
	}
}

func TestLowerCamel(t *testing.T) {
	cases := map[string]string{
		"Text":           "text",
		"A":              "a",
		"ID":             "id",
		"PlayerID":       "playerID",
		"URLPath":        "urlPath",
		"HTTPServerName": "httpServerName",
		"X1":             "x1",
		"ABc":            "aBc",
		"Éclair":         "éclair",
		"already":        "already",
		"":               "",
	}
	for in, want := range cases {
		require.Equal(t, want, binding.LowerCamel(in), "lowerCamel(%q)", in)
	}
}

func TestEditDistance(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"abc", "", 3},
		{"same", "same", 0},
		{"chanel", "channel", 1},   // a letter missing
		{"channnel", "channel", 1}, // one too many
		{"cat", "cut", 1},          // one changed
		{"txet", "text", 1},        // two swapped
		{"ab", "ba", 1},
		{"abcd", "badc", 2}, // two swaps
		{"ca", "abc", 3},    // optimal string alignment: no edits to a swapped pair
		{"kitten", "sitting", 3},
		{"Text", "text", 1}, // case counts here; nearest folds it
		{"héllo", "hello", 1},
		{"日本", "本日", 1},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, binding.EditDistance(tc.a, tc.b), "editDistance(%q, %q)", tc.a, tc.b)
		require.Equal(t, tc.want, binding.EditDistance(tc.b, tc.a), "editDistance(%q, %q)", tc.b, tc.a)
	}
}

func TestNearest(t *testing.T) {
	cases := []struct {
		name       string
		word       string
		candidates []string
		want       string
	}{
		{"no candidates", "text", nil, ""},
		{"empty word", "", []string{"a", "b"}, ""},
		{"exact", "text", []string{"channel", "text"}, "text"},
		{"case only", "TEXT", []string{"channel", "text"}, "text"},
		{"missing letter", "chanel", []string{"text", "channel"}, "channel"},
		{"swap", "txet", []string{"text", "channel"}, "text"},
		{"too far", "colour", []string{"text", "channel"}, ""},
		{"short words allow one edit", "ab", []string{"abc"}, "abc"},
		{"short words not two", "a", []string{"abc"}, ""},
		{"up to 8 letters allow two", "anonce", []string{"announce"}, "announce"},
		{"up to 8 letters not three", "anno", []string{"announce"}, ""},
		{"long words allow three", "brodcastmesage", []string{"broadcastMessage"}, "broadcastMessage"},
		{"a tie goes to the first in alphabetical order", "bat", []string{"cat", "bar"}, "bar"},
		{"the closest wins", "jion", []string{"joint", "jump", "join"}, "join"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, binding.Nearest(tc.word, tc.candidates))
		})
	}
}
