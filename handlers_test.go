package wszero

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"github.com/wszero/wszero/internal/binding"
)

// pair is a named parameter struct for the shape tests.
type pair struct{ A, B int }

// shapeCase is one handler shape: make builds the handler, which reports
// what it received on seen; the test calls it with params and expects
// the handler to see wantSeen and the reply to carry wantResult.
type shapeCase struct {
	name       string
	make       func(seen chan<- any) any
	params     map[string]any
	wantSeen   any
	wantResult any // as decoded from JSON; nil for null
}

func shapeCases() []shapeCase {
	ab := map[string]any{"a": 2, "b": 3}
	p := Params{"a": 2.0, "b": 3.0}
	m := map[string]any{"a": 2.0, "b": 3.0}
	return []shapeCase{
		{"client/nothing", func(seen chan<- any) any { return func(c *Client) { seen <- "ran" } }, nil, "ran", nil},
		{"client/error", func(seen chan<- any) any { return func(c *Client) error { seen <- "ran"; return nil } }, nil, "ran", nil},
		{"client/R", func(seen chan<- any) any { return func(c *Client) string { seen <- "ran"; return "hi" } }, nil, "ran", "hi"},
		{"client/(R,error)", func(seen chan<- any) any { return func(c *Client) (int, error) { seen <- "ran"; return 7, nil } }, nil, "ran", 7.0},

		{"Params/nothing", func(seen chan<- any) any { return func(c *Client, p Params) { seen <- p } }, ab, p, nil},
		{"Params/error", func(seen chan<- any) any { return func(c *Client, p Params) error { seen <- p; return nil } }, ab, p, nil},
		{"Params/R", func(seen chan<- any) any { return func(c *Client, p Params) any { seen <- p; return p["a"] } }, ab, p, 2.0},
		{"Params/(R,error)", func(seen chan<- any) any { return func(c *Client, p Params) (any, error) { seen <- p; return p, nil } }, ab, p, m},

		{"map/nothing", func(seen chan<- any) any { return func(c *Client, p map[string]any) { seen <- p } }, ab, m, nil},
		{"map/error", func(seen chan<- any) any { return func(c *Client, p map[string]any) error { seen <- p; return nil } }, ab, m, nil},
		{"map/R", func(seen chan<- any) any {
			return func(c *Client, p map[string]any) float64 { seen <- p; return p["b"].(float64) }
		}, ab, m, 3.0},
		{"map/(R,error)", func(seen chan<- any) any {
			return func(c *Client, p map[string]any) ([]string, error) { seen <- p; return []string{"x"}, nil }
		}, ab, m, []any{"x"}},

		{"named struct/nothing", func(seen chan<- any) any { return func(c *Client, p pair) { seen <- p } }, ab, pair{2, 3}, nil},
		{"named struct/error", func(seen chan<- any) any { return func(c *Client, p pair) error { seen <- p; return nil } }, ab, pair{2, 3}, nil},
		{"named struct/R", func(seen chan<- any) any { return func(c *Client, p pair) int { seen <- p; return p.A + p.B } }, ab, pair{2, 3}, 5.0},
		{"named struct/(R,error)", func(seen chan<- any) any { return func(c *Client, p pair) (pair, error) { seen <- p; return p, nil } }, ab, pair{2, 3},
			map[string]any{"A": 2.0, "B": 3.0}},

		{"anonymous struct/nothing", func(seen chan<- any) any { return func(c *Client, p struct{ A, B int }) { seen <- pair(p) } }, ab, pair{2, 3}, nil},
		{"anonymous struct/error", func(seen chan<- any) any {
			return func(c *Client, p struct{ A, B int }) error { seen <- pair(p); return nil }
		}, ab, pair{2, 3}, nil},
		{"anonymous struct/R", func(seen chan<- any) any {
			return func(c *Client, p struct{ A, B int }) int { seen <- pair(p); return p.A * p.B }
		}, ab, pair{2, 3}, 6.0},
		{"anonymous struct/(R,error)", func(seen chan<- any) any {
			return func(c *Client, p struct{ A, B int }) (*int, error) { seen <- pair(p); return nil, nil }
		}, ab, pair{2, 3}, nil},

		{"pointer to struct/nothing", func(seen chan<- any) any { return func(c *Client, p *pair) { seen <- *p } }, ab, pair{2, 3}, nil},
		{"pointer to struct/error", func(seen chan<- any) any { return func(c *Client, p *pair) error { seen <- *p; return nil } }, ab, pair{2, 3}, nil},
		{"pointer to struct/R", func(seen chan<- any) any { return func(c *Client, p *pair) bool { seen <- *p; return p.A < p.B } }, ab, pair{2, 3}, true},
		{"pointer to struct/(R,error)", func(seen chan<- any) any {
			return func(c *Client, p *pair) (map[string]int, error) {
				seen <- *p
				return map[string]int{"sum": p.A + p.B}, nil
			}
		}, ab, pair{2, 3}, map[string]any{"sum": 5.0}},
	}
}

// withOp returns a new message: params plus "op".
func withOp(op string, params map[string]any) map[string]any {
	msg := map[string]any{"op": op}
	for k, v := range params {
		msg[k] = v
	}
	return msg
}

// received waits for what a handler reported on seen.
func received[T any](t *testing.T, seen <-chan T) T {
	t.Helper()
	select {
	case v := <-seen:
		return v
	case <-time.After(testTimeout):
		t.Fatal("the handler was not called")
		panic("unreachable")
	}
}

// readRaw returns the next frame exactly as the server wrote it.
func (p *peer) readRaw() []byte {
	p.t.Helper()
	require.NoError(p.t, p.conn.SetReadDeadline(time.Now().Add(testTimeout)))
	kind, data, err := p.conn.ReadMessage()
	require.NoError(p.t, err)
	require.Equal(p.t, websocket.TextMessage, kind)
	return data
}

// errorFor sends msg and returns the error message the server answers with;
// the answer must be the very next frame, and must not answer a call.
func (p *peer) errorFor(msg string) string {
	p.t.Helper()
	p.send(msg)
	m := p.read()
	require.Equal(p.t, "error", m["op"], "answer to %s: %v", msg, m)
	require.NotContains(p.t, m, "_ref")
	delete(m, "for")
	require.Len(p.t, m, 2, "an error is {op, msg, for}: %v", m)
	return m["msg"].(string)
}

func TestHandlerShapesAnswerCalls(t *testing.T) {
	for _, tc := range shapeCases() {
		t.Run(tc.name, func(t *testing.T) {
			s, ts := newTestServer(t)
			seen := make(chan any, 4)
			s.On("do", tc.make(seen))
			p := dial(t, ts)

			reply := p.call(1, withOp("do", tc.params))
			require.Equal(t, map[string]any{"op": "_reply", "_ref": 1.0, "result": tc.wantResult}, reply)
			require.Equal(t, tc.wantSeen, received(t, seen))

			// A message that is not a call runs the handler, but its value
			// is not sent: the next frame is the reply to the next call.
			p.send(withOp("do", tc.params))
			call := withOp("do", tc.params)
			call["_ref"] = 2
			p.send(call)
			first := p.read()
			require.Equal(t, map[string]any{"op": "_reply", "_ref": 2.0, "result": tc.wantResult}, first)
			require.Equal(t, tc.wantSeen, received(t, seen))
			require.Equal(t, tc.wantSeen, received(t, seen))
		})
	}
}

func TestHandlerErrorsAnswerTheSender(t *testing.T) {
	boom := errors.New("no luck today")
	cases := []struct {
		name    string
		handler any
		params  map[string]any
	}{
		{"client/error", func(c *Client) error { return boom }, nil},
		{"client/(R,error)", func(c *Client) (string, error) { return "ignored", boom }, nil},
		{"Params/error", func(c *Client, p Params) error { return boom }, map[string]any{"x": 1}},
		{"Params/(R,error)", func(c *Client, p Params) (any, error) { return p, boom }, map[string]any{"x": 1}},
		{"map/(R,error)", func(c *Client, p map[string]any) (int, error) { return 1, boom }, map[string]any{"x": 1}},
		{"named struct/error", func(c *Client, p pair) error { return boom }, map[string]any{"a": 1, "b": 2}},
		{"anonymous struct/(R,error)", func(c *Client, p struct{ A, B int }) (int, error) { return 0, boom }, map[string]any{"a": 1, "b": 2}},
		{"pointer to struct/(R,error)", func(c *Client, p *pair) (*pair, error) { return p, boom }, map[string]any{"a": 1, "b": 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, ts := newTestServer(t)
			s.On("do", tc.handler)
			p := dial(t, ts)
			require.Equal(t, map[string]any{"op": "error", "_ref": 1.0, "msg": "no luck today", "for": "do"}, p.call(1, withOp("do", tc.params)))
			// Not a call: the error still reaches the sender, without "_ref".
			p.send(withOp("do", tc.params))
			require.Equal(t, map[string]any{"op": "error", "msg": "no luck today", "for": "do"}, p.read())
		})
	}
}

func TestHandlerErrorWithoutText(t *testing.T) {
	s, ts := newTestServer(t)
	s.On("do", func(c *Client) error { return errors.New("") })
	p := dial(t, ts)
	require.Equal(t, map[string]any{"op": "error", "_ref": 1.0, "msg": "do failed (its error has no message)", "for": "do"},
		p.call(1, map[string]any{"op": "do"}))
}

func TestReplyEchoesRefExactly(t *testing.T) {
	s, ts := newTestServer(t)
	s.On("add", func(c *Client, p struct{ A, B int }) int { return p.A + p.B })
	s.On("quiet", func(c *Client) {})
	s.On("fail", func(c *Client) error { return errors.New("nope") })
	cases := []struct{ send, want string }{
		{`{"op":"add","a":1,"b":2,"_ref":7}`, `{"op":"_reply","_ref":7,"result":3}`},
		{`{"op":"add","a":1,"b":2,"_ref":"abc"}`, `{"op":"_reply","_ref":"abc","result":3}`},
		{`{"op":"add","a":1,"b":2,"_ref":""}`, `{"op":"_reply","_ref":"","result":3}`},
		{`{"op":"add","a":1,"b":2,"_ref":-1.50e2}`, `{"op":"_reply","_ref":-1.50e2,"result":3}`},
		{`{"op":"add","a":1,"b":2,"_ref":"caf\u00e9 \"q\""}`, `{"op":"_reply","_ref":"caf\u00e9 \"q\"","result":3}`},
		{`{"_ref": 0 , "op":"quiet"}`, `{"op":"_reply","_ref":0,"result":null}`},
		{`{"op":"fail","_ref":"x1"}`, `{"op":"error","msg":"nope","for":"fail","_ref":"x1"}`},
		{`{"op":"add","a":1,"_ref":"x2"}`, `{"op":"error","msg":"add needs \"b\": add it to the message, like {\"op\": \"add\", \"b\": 1}","for":"add","_ref":"x2"}`},
		// Bytes that are not UTF-8, echoed, would make an invalid text frame,
		// which browsers answer by closing the connection: such a frame is
		// refused with an error that answers no call.
		{"{\"op\":\"quiet\",\"_ref\":\"a\xffb\"}", `{"op":"error","msg":"the message is not valid UTF-8 text, which WebSocket text frames and JSON must be: send a JSON object like {\"op\": \"hello\"}"}`},
	}
	p := dial(t, ts)
	for _, tc := range cases {
		p.send(tc.send)
		got := p.readRaw()
		require.True(t, utf8.Valid(got), "%q", got)
		require.Equal(t, tc.want, string(got), "answer to %s", tc.send)
	}
}

func TestOpsThatCannotBeHandled(t *testing.T) {
	s, ts := newTestServer(t)
	ran := make(chan string, 16)
	record := func(op string) func(*Client) { return func(*Client) { ran <- op } }
	s.On("connect", record("connect"))
	s.On("disconnect", record("disconnect"))
	s.On("announce", func(c *Client, p Params) { ran <- "announce" })
	s.On("join", record("join"))
	s.On("sync", func(c *Client) string { return "synced" })
	p := dial(t, ts)
	require.Equal(t, "connect", received(t, ran))

	cases := []struct{ send, want string }{
		{`{"op":"anounce"}`, `no handler for "anounce" — did you mean "announce"?`},
		{`{"op":"Announce"}`, `no handler for "Announce" — did you mean "announce"?`},
		{`{"op":"jion"}`, `no handler for "jion" — did you mean "join"?`},
		{`{"op":"dance"}`, `no handler for "dance": the server handles "announce", "join" and "sync"`},
		{`{"op":"connect"}`, `"connect" is sent by the server itself when a client arrives or leaves: a client cannot send it; choose another op name`},
		{`{"op":"disconnect"}`, `"disconnect" is sent by the server itself when a client arrives or leaves: a client cannot send it; choose another op name`},
		{`{"op":"_reply","result":2}`, `"_reply": ops starting with "_" belong to the wszero protocol; choose a name without the "_"`},
		{`{"op":"_anything"}`, `"_anything": ops starting with "_" belong to the wszero protocol; choose a name without the "_"`},
		{`{"op":""}`, `"op" is empty: say which handler the message is for, like {"op": "hello"}`},
		{`{"text":"hi"}`, `the message has no "op": say which handler it is for, like {"op": "hello"}`},
		{`{}`, `the message has no "op": say which handler it is for, like {"op": "hello"}`},
		{`{"op":5}`, `"op" must be a string, like {"op": "hello"}; got 5`},
		{`{"op":null}`, `"op" must be a string, like {"op": "hello"}; got null`},
		{`{"op":{"name":"announce"}}`, `"op" must be a string, like {"op": "hello"}; got an object`},
		{`{"op":["announce"]}`, `"op" must be a string, like {"op": "hello"}; got a list`},
		{`{"op":true}`, `"op" must be a string, like {"op": "hello"}; got true`},
		{`{"op":"announce","_ref":{"id":1}}`, `"_ref" must be a number or a string that names the call, like {"op": "add", "_ref": 1}; got an object`},
		{`{"op":"announce","_ref":[1]}`, `"_ref" must be a number or a string that names the call, like {"op": "add", "_ref": 1}; got a list`},
		{`{"op":"announce","_ref":null}`, `"_ref" must be a number or a string that names the call, like {"op": "add", "_ref": 1}; got null`},
		{`{"op":"announce","_ref":false}`, `"_ref" must be a number or a string that names the call, like {"op": "add", "_ref": 1}; got false`},
		{`["announce"]`, `a message must be a JSON object like {"op": "hello"}, not a list`},
		{`"announce"`, `a message must be a JSON object like {"op": "hello"}, not the string "announce"`},
		{`42`, `a message must be a JSON object like {"op": "hello"}, not 42`},
		{`null`, `a message must be a JSON object like {"op": "hello"}, not null`},
		{" \n\tnull ", `a message must be a JSON object like {"op": "hello"}, not null`},
		{"\r\n[1] ", `a message must be a JSON object like {"op": "hello"}, not a list`},
		{` true`, `a message must be a JSON object like {"op": "hello"}, not true`},
		{`{"op":"sync"} {}`, `the message is not valid JSON (invalid character '{' after top-level value at byte 15): send an object like {"op": "hello"}`},
		{`{"op":"announce"`, `the message is not valid JSON (unexpected end of JSON input at byte 16): send an object like {"op": "hello"}`},
		{`{op: "announce"}`, `the message is not valid JSON (invalid character 'o' looking for beginning of object key string at byte 2): send an object like {"op": "hello"}`},
		{``, `the message is not valid JSON (unexpected end of JSON input at byte 0): send an object like {"op": "hello"}`},
		{`{"op":"` + strings.Repeat("x", 100) + `"}`, `no handler for "` + strings.Repeat("x", 40) + `"…: the server handles "announce", "join" and "sync"`},
	}
	for _, tc := range cases {
		t.Run(tc.send, func(t *testing.T) {
			require.Equal(t, tc.want, p.errorFor(tc.send))
		})
	}
	// None of them ran a handler: a handler would have run before this call.
	require.Equal(t, "synced", p.call(1, map[string]any{"op": "sync"})["result"])
	require.Empty(t, ran)

	t.Run("a call is answered with its _ref", func(t *testing.T) {
		require.Equal(t, map[string]any{"op": "error", "_ref": "r", "msg": `no handler for "anounce" — did you mean "announce"?`, "for": "anounce"},
			callRaw(p, `{"op":"anounce","_ref":"r"}`))
		require.Equal(t, map[string]any{"op": "error", "_ref": 3.0, "msg": `"_x": ops starting with "_" belong to the wszero protocol; choose a name without the "_"`, "for": "_x"},
			callRaw(p, `{"op":"_x","_ref":3}`))
		require.Equal(t, map[string]any{"op": "error", "_ref": 4.0, "msg": `the message has no "op": say which handler it is for, like {"op": "hello"}`},
			callRaw(p, `{"_ref":4}`))
		require.Equal(t, map[string]any{"op": "error", "_ref": 5.0, "msg": `"op" must be a string, like {"op": "hello"}; got 5`},
			callRaw(p, `{"_ref":5,"op":5}`))
	})
}

// callRaw sends a raw message and returns the next frame, which must
// answer it.
func callRaw(p *peer, msg string) map[string]any {
	p.t.Helper()
	p.send(msg)
	return p.read()
}

func TestServerWithoutHandlers(t *testing.T) {
	_, ts := newTestServer(t)
	p := dial(t, ts)
	require.Equal(t, `no handler for "hello": the server has no handlers yet; add one with wszero.On("hello", …)`, p.errorFor(`{"op":"hello"}`))
	require.Equal(t, `"connect" is sent by the server itself when a client arrives or leaves: a client cannot send it; choose another op name`,
		p.errorFor(`{"op":"connect"}`))
}

// onPanic calls s.On(op, fn) and returns what it panicked with ("<nil>"
// when it did not), and the file:line of the On call.
func onPanic(s *Server, op string, fn any) (msg, where string) {
	defer func() { msg = fmt.Sprint(recover()) }()
	_, file, line, _ := runtime.Caller(0)
	where = fmt.Sprintf("%s:%d", file, line+2)
	s.On(op, fn) // must stay two lines below runtime.Caller
	return "", where
}

func TestOnPanicsOnWrongShapes(t *testing.T) {
	var nilFunc func(*Client)
	type withOp struct{ Op string }
	cases := []struct {
		name, op string
		fn       any
		reason   string // what follows "wszero.On(…) at file:line: "
	}{
		{"not a function", "x", 42, "the handler has type int, not a function.\n" + handlerShapes},
		{"a string", "x", "hello", "the handler has type string, not a function.\n" + handlerShapes},
		{"nil", "x", nil, "the handler is nil.\n" + handlerShapes},
		{"nil function", "x", nilFunc, "the handler is a nil func(*wszero.Client).\n" + handlerShapes},
		{"no parameters", "x", func() {}, "the handler func() must take a *wszero.Client first.\n" + handlerShapes},
		{"first not *Client", "x", func(n int) {}, "the handler func(int) must take a *wszero.Client first.\n" + handlerShapes},
		{"other pointer first", "x", func(s *Server) {}, "the handler func(*wszero.Server) must take a *wszero.Client first.\n" + handlerShapes},
		{"params first", "x", func(p Params, c *Client) {}, "the handler func(wszero.Params, *wszero.Client) must take a *wszero.Client first.\n" + handlerShapes},
		{"three parameters", "x", func(c *Client, p Params, n int) {},
			"the handler func(*wszero.Client, wszero.Params, int) takes 3 parameters: a handler takes the *wszero.Client and at most one more.\n" + handlerShapes},
		{"variadic", "x", func(c *Client, n ...int) {},
			"the handler func(*wszero.Client, ...int) takes ...int: a handler cannot take a variable number of parameters.\n" + handlerShapes},
		{"variadic clients", "x", func(c ...*Client) {}, "the handler func(...*wszero.Client) must take a *wszero.Client first.\n" + handlerShapes},
		{"int parameter", "x", func(c *Client, n int) {},
			"the handler func(*wszero.Client, int) takes int as its second parameter, which must be wszero.Params or a struct.\n" + handlerShapes},
		{"string parameter", "x", func(c *Client, s string) {},
			"the handler func(*wszero.Client, string) takes string as its second parameter, which must be wszero.Params or a struct.\n" + handlerShapes},
		{"slice parameter", "x", func(c *Client, s []string) {},
			"the handler func(*wszero.Client, []string) takes []string as its second parameter, which must be wszero.Params or a struct.\n" + handlerShapes},
		{"other map parameter", "x", func(c *Client, m map[string]int) {},
			"the handler func(*wszero.Client, map[string]int) takes map[string]int as its second parameter, which must be wszero.Params or a struct.\n" + handlerShapes},
		{"pointer to pointer", "x", func(c *Client, p **pair) {},
			"the handler func(*wszero.Client, **wszero.pair) takes **wszero.pair as its second parameter, which must be wszero.Params or a struct.\n" + handlerShapes},
		{"three results", "x", func(c *Client) (int, int, error) { return 0, 0, nil },
			"the handler func(*wszero.Client) (int, int, error) returns 3 values: return nothing, an error, a value, or (a value, an error).\n" + handlerShapes},
		{"two results, no error", "x", func(c *Client) (int, string) { return 0, "" },
			"the handler func(*wszero.Client) (int, string) returns (int, string): when a handler returns two values, the second must be an error.\n" + handlerShapes},
		{"error first", "x", func(c *Client) (error, int) { return nil, 0 },
			"the handler func(*wszero.Client) (error, int) returns (error, int): when a handler returns two values, the second must be an error.\n" + handlerShapes},
		{"empty op", "", func(c *Client) {}, `the op is empty: give the handler a name, like wszero.On("hello", hello)`},
		{"op starting with _", "_op", func(c *Client) {}, `ops starting with "_" belong to the wszero protocol: choose a name without the "_"`},
		{"_reply", "_reply", func(c *Client) {}, `ops starting with "_" belong to the wszero protocol: choose a name without the "_"`},
		{"connect with Params", "connect", func(c *Client, p Params) {},
			`the "connect" handler takes only the client: func(c *wszero.Client), not func(*wszero.Client, wszero.Params)`},
		{"disconnect with a struct", "disconnect", func(c *Client, p pair) error { return nil },
			`the "disconnect" handler takes only the client: func(c *wszero.Client), not func(*wszero.Client, wszero.pair) error`},
		{"field named op", "x", func(c *Client, p withOp) {},
			"the handler func(*wszero.Client, wszero.withOp) cannot take its parameters: field Op would bind the key \"op\", " +
				"but keys named \"op\" or starting with \"_\" belong to wszero; give the field another name with a json tag, like `json:\"kind\"`"},
		{"field tagged _x", "x", func(c *Client, p struct {
			X string `json:"_x"`
		}) {
		}, "the handler func(*wszero.Client, struct { X string \"json:\\\"_x\\\"\" }) cannot take its parameters: field X would bind the key \"_x\", " +
			"but keys named \"op\" or starting with \"_\" belong to wszero; give the field another name with a json tag, like `json:\"kind\"`"},
		{"default that is not a number", "x", func(c *Client, p struct {
			N int `default:"many"`
		}) {
		}, "the handler func(*wszero.Client, struct { N int \"default:\\\"many\\\"\" }) cannot take its parameters: field N has default:\"many\", which is not a whole number"},
		{"default too big", "x", func(c *Client, p *struct {
			N int8 `default:"300"`
		}) {
		}, "the handler func(*wszero.Client, *struct { N int8 \"default:\\\"300\\\"\" }) cannot take its parameters: field N has default:\"300\", which is not a whole number from -128 to 127"},
		{"default list that is not JSON", "x", func(c *Client, p struct {
			L []string `default:"a,b"`
		}) {
		}, "the handler func(*wszero.Client, struct { L []string \"default:\\\"a,b\\\"\" }) cannot take its parameters: field L has default:\"a,b\", which is not a list of strings"},
		{"two fields, one key", "x", func(c *Client, p struct {
			Name  string
			Title string `json:"name"`
		}) {
		}, "the handler func(*wszero.Client, struct { Name string; Title string \"json:\\\"name\\\"\" }) cannot take its parameters: fields Name and Title both bind the key \"name\"; rename one with a json tag"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New(quiet())
			msg, where := onPanic(s, tc.op, tc.fn)
			require.True(t, strings.Contains(where, "handlers_test.go:"), where)
			require.Equal(t, fmt.Sprintf("wszero.On(%q, …) at %s: %s", tc.op, where, tc.reason), msg)
			require.Nil(t, s.handlerFor(tc.op), "a refused handler is not registered")
		})
	}
}

func TestOnPanicsOnSecondHandlerForAnOp(t *testing.T) {
	s := New(quiet())
	s.On("hello", func(c *Client) {})
	_, file, line, _ := runtime.Caller(0)
	first := fmt.Sprintf("%s:%d", file, line-1)
	msg, second := onPanic(s, "hello", func(c *Client, p Params) {})
	require.Equal(t, fmt.Sprintf("wszero.On(%q, …) at %s: %q already has a handler, registered at %s.\n"+
		"Each op has one handler: remove one of them, or give this one another name.", "hello", second, "hello", first), msg)
	require.Equal(t, binding.InputNone, s.handlerFor("hello").Input, "the first handler stays")
}

func TestOnPanicPointsAtTheCaller(t *testing.T) {
	t.Run("package-level On", func(t *testing.T) {
		var msg string
		func() {
			defer func() { msg = fmt.Sprint(recover()) }()
			On("", func(c *Client) {}) // the default server refuses it and stays as it was
		}()
		_, file, line, _ := runtime.Caller(0)
		require.Contains(t, msg, fmt.Sprintf(" at %s:%d: ", file, line-2))
	})
	t.Run("method value", func(t *testing.T) {
		s := New(quiet())
		on := s.On
		var msg string
		func() {
			defer func() { msg = fmt.Sprint(recover()) }()
			on("x", 42)
		}()
		_, file, line, _ := runtime.Caller(0)
		require.Contains(t, msg, fmt.Sprintf(" at %s:%d: ", file, line-2))
	})
}

func TestPanickingHandler(t *testing.T) {
	modes := []struct {
		name string
		opts []Option
	}{
		{"one loop", nil},
		{"parallel", []Option{WithParallelHandlers()}},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			s, ts := newTestServer(t, mode.opts...)
			s.On("boom", func(c *Client, p struct{ Why string }) { panic(p.Why) })
			s.On("add", func(c *Client, p pair) int { return p.A + p.B })
			a, b := dial(t, ts), dial(t, ts)

			require.Equal(t, map[string]any{"op": "error", "_ref": 1.0, "msg": "boom crashed on the server: the server's log says where and why", "for": "boom"},
				a.call(1, map[string]any{"op": "boom", "why": "kaboom"}))
			a.send(map[string]any{"op": "boom", "why": "again"})
			require.Equal(t, map[string]any{"op": "error", "msg": "boom crashed on the server: the server's log says where and why", "for": "boom"}, a.read())

			// The connection keeps working, and the other client heard nothing.
			require.Equal(t, 5.0, a.call(2, map[string]any{"op": "add", "a": 2, "b": 3})["result"])
			require.Equal(t, map[string]any{"op": "_reply", "_ref": 3.0, "result": 9.0}, b.call(3, map[string]any{"op": "add", "a": 4, "b": 5}))
			require.Len(t, s.Clients(), 2)
		})
	}
}

func TestPanicWhileReadingParameters(t *testing.T) {
	s, ts := newTestServer(t)
	s.On("do", func(c *Client, p struct{ V panicky }) {})
	s.On("ping", func(c *Client) string { return "pong" })
	p := dial(t, ts)
	require.Equal(t, map[string]any{"op": "error", "_ref": 1.0, "msg": "do could not read the message: the server crashed reading it (the server log shows where)", "for": "do"},
		p.call(1, map[string]any{"op": "do", "v": 1}))
	require.Equal(t, "pong", p.call(2, map[string]any{"op": "ping"})["result"])
}

// panicky panics when it is decoded from JSON.
type panicky struct{}

func (*panicky) UnmarshalJSON([]byte) error { panic("cannot decode") }

func TestConnectHandlerErrorReachesTheClient(t *testing.T) {
	s, ts := newTestServer(t)
	s.On("connect", func(c *Client) error { return errors.New("welcome failed") })
	p := dial(t, ts)
	require.Equal(t, map[string]any{"op": "error", "msg": "welcome failed", "for": "connect"}, p.read())
}

func TestResultThatIsNotJSON(t *testing.T) {
	s, ts := newTestServer(t)
	s.On("do", func(c *Client) chan int { return make(chan int) })
	p := dial(t, ts)
	reply := p.call(1, map[string]any{"op": "do"})
	require.Equal(t, "error", reply["op"])
	require.Contains(t, reply["msg"], "do returned a value that cannot be sent as JSON")
}
