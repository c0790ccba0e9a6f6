package browsertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wszero/wszero"
)

// classicPage uses the classic script, the way a beginner's page does, and
// sends a message at once: before the socket can be open.
const classicPage = `<!doctype html>
<title>classic</title>
<script src="/wszero.js"></script>
<script>
window.echoed = [];
HANDLERS.echoed = function (msg) { echoed.push(msg.text); };
window.stateAtFirstSend = wszero.connectionState();
send_message({op: "echo", text: "sent before the socket opened"});
</script>`

// classicServer has the handlers the classic and module pages use.
func classicServer() *wszero.Server {
	s := wszero.New(quiet(), wszero.WithRateLimit(0, 1)) // a test below sends 1000 messages at once
	s.On("note", func(c *wszero.Client) {})
	s.On("echo", func(c *wszero.Client, p struct{ Text string }) error {
		return c.Send("echoed", wszero.Params{"text": p.Text})
	})
	s.On("add", func(c *wszero.Client, p struct{ A, B int }) int { return p.A + p.B })
	s.On("divide", func(c *wszero.Client, p struct{ A, B float64 }) (float64, error) {
		if p.B == 0 {
			return 0, errors.New("cannot divide by zero: choose another b")
		}
		return p.A / p.B, nil
	})
	s.On("please_eval", func(c *wszero.Client, p struct{ Script string }) error {
		return c.EvalJS(p.Script)
	})
	s.On("riddle_me", func(c *wszero.Client) error {
		return c.Send("riddle", wszero.Params{"q": "what has keys but opens no locks?"})
	})
	return s
}

// testClassicScript drives a page that loads /wszero.js with a plain
// <script> tag: the globals, queued sends, calls, eval_js, and what the
// console says about errors and unknown ops.
func testClassicScript(t *testing.T, browser context.Context) {
	ts := serve(t, classicServer(), map[string]string{"/": classicPage})
	p := openPage(t, browser, ts.URL+"/")

	t.Run("globals", func(t *testing.T) {
		p := p.in(t)
		types := eval[map[string]string](p, `({HANDLERS: typeof HANDLERS, send_message: typeof send_message, call: typeof call, eval_js: typeof HANDLERS.eval_js})`)
		if want := map[string]string{"HANDLERS": "object", "send_message": "function", "call": "function", "eval_js": "function"}; fmt.Sprint(types) != fmt.Sprint(want) {
			t.Errorf("the globals are %v, want %v", types, want)
		}
	})

	t.Run("a message sent before the socket opened is delivered once it opens", func(t *testing.T) {
		p := p.in(t)
		if got := eval[string](p, `stateAtFirstSend`); got != "connecting" {
			t.Errorf("the page sent its first message in state %q; the test wants it sent before the socket opened", got)
		}
		p.waitEqual(`echoed`, []string{"sent before the socket opened"})
		p.waitEqual(`wszero.connectionState()`, "open")
	})

	t.Run("call resolves with the result", func(t *testing.T) {
		p := p.in(t)
		if got := eval[int](p, `call("add", {a: 2, b: 3})`); got != 5 {
			t.Errorf(`call("add", {a: 2, b: 3}) = %d, want 5`, got)
		}
	})

	t.Run("call rejects with a CallError carrying the server's message", func(t *testing.T) {
		p := p.in(t)
		got := eval[map[string]any](p, `call("divide", {a: 1, b: 0}).then(
			(v) => ({resolved: v}),
			(err) => ({name: err.name, message: err.message, op: err.op, isError: err instanceof Error}))`)
		want := map[string]any{"name": "CallError", "message": "cannot divide by zero: choose another b", "op": "divide", "isError": true}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("the rejection is %v, want %v", got, want)
		}
		// A binding error rejects the same way, in the server's words.
		msg := eval[string](p, `call("add", {a: 1, b: "two"}).then(() => "resolved", (err) => err.message)`)
		if !strings.HasPrefix(msg, `add: "b" should be a whole number`) {
			t.Errorf("the rejection's message is %q", msg)
		}
	})

	t.Run("eval_js from the server runs in the page", func(t *testing.T) {
		p := p.in(t)
		p.run(`send_message({op: "please_eval", script: "document.body.dataset.evaluated = 'by the server'"})`)
		p.waitEqual(`document.body.dataset.evaluated`, "by the server")
	})

	t.Run("an error with no handler goes to console.error naming its op", func(t *testing.T) {
		p := p.in(t)
		p.run(`send_message({op: "add", a: 1})`)
		m := p.waitConsole(chromedp.ConsoleError, `(answering your "add" message)`)
		if !strings.HasPrefix(m.Text, `wszero: add needs "b"`) {
			t.Errorf("console.error said %q", m.Text)
		}
	})

	t.Run("a message for an op with no handler warns and does not throw", func(t *testing.T) {
		p := p.in(t)
		p.run(`send_message({op: "riddle_me"})`)
		m := p.waitConsole(chromedp.ConsoleWarning, `"riddle"`)
		for _, want := range []string{`no handler for it`, `HANDLERS.riddle = function (msg)`, `Handlers on this page: echoed.`} {
			if !strings.Contains(m.Text, want) {
				t.Errorf("the warning %q does not say %q", m.Text, want)
			}
		}
		// Later messages still work.
		p.run(`send_message({op: "echo", text: "still here"})`)
		p.waitEqual(`echoed`, []string{"sent before the socket opened", "still here"})
	})

	t.Run("a call pushed out of the queue while disconnected rejects", func(t *testing.T) {
		p := p.in(t)
		p.run(`wszero.close()`)
		p.waitEqual(`wszero.connectionState()`, "closed")
		p.run(`window.dropped = call("add", {a: 1, b: 2}).then((v) => "resolved: " + v, (err) => err.message);
			for (let i = 0; i < 1000; i++) send_message({op: "note"});`)
		if got := eval[string](p, `dropped`); got != `"add" was never sent: more than 1000 messages waited for the connection` {
			t.Errorf("the dropped call settled with %q", got)
		}
		p.waitConsole(chromedp.ConsoleWarning, "wszero: more than 1000 messages are waiting for the connection, so the oldest are being dropped")
		p.run(`wszero.connect()`)
		p.waitEqual(`wszero.connectionState()`, "open")
		if got := eval[int](p, `call("add", {a: 2, b: 2})`); got != 4 {
			t.Errorf("add after reconnecting returned %d", got)
		}
	})

	p.noExceptions()
}

// modulePage imports the ES module and exposes what it imported.
const modulePage = `<!doctype html>
<title>module</title>
<script type="module">
import {on, call, onState, connectionState, HANDLERS, CallError} from "/wszero.mjs";
window.states = [];
onState((state) => states.push(state));
window.first = [];
window.second = [];
window.offFirst = on("tick", (msg) => first.push(msg.n));
window.offSecond = on("tick", (msg) => second.push(msg.n));
HANDLERS.tock = (msg) => { window.tock = msg.word; };
window.wz = {call, connectionState, onState, CallError};
window.ready = true;
</script>`

// testESModule drives a page that imports /wszero.mjs: on and its
// unsubscribe function, call, onState and the shared HANDLERS.
func testESModule(t *testing.T, browser context.Context) {
	s := wszero.New(quiet())
	s.On("tick_me", func(c *wszero.Client, p struct{ N int }) (int, error) {
		return p.N, c.Send("tick", wszero.Params{"n": p.N}) // the tick arrives before the reply
	})
	s.On("tock_me", func(c *wszero.Client) error { return c.Send("tock", wszero.Params{"word": "tock"}) })
	answerSlow := make(chan struct{}) // the slow call is answered once the page has given up on it
	var answerOnce sync.Once
	s.On("slow", func(c *wszero.Client) string {
		<-answerSlow
		return "late"
	})
	type Sum struct {
		Total int      `json:"total"`
		Terms []string `json:"terms"`
	}
	s.On("sum", func(c *wszero.Client, p struct{ A, B int }) Sum {
		return Sum{Total: p.A + p.B, Terms: []string{fmt.Sprint(p.A), fmt.Sprint(p.B)}}
	})
	ts := serve(t, s, map[string]string{"/": modulePage})
	// Registered after serve, so it runs before the server is stopped.
	t.Cleanup(func() { answerOnce.Do(func() { close(answerSlow) }) })
	p := openPage(t, browser, ts.URL+"/")
	p.waitFor(`window.ready`)

	t.Run("onState reports open", func(t *testing.T) {
		p := p.in(t)
		p.waitEqual(`wz.connectionState()`, "open")
		p.waitEqual(`states`, []string{"connecting", "open"})
		// A listener that comes late hears the current state at once.
		late := eval[[]string](p, `(() => { const heard = []; const stop = wz.onState((s) => heard.push(s)); stop(); return heard; })()`)
		if fmt.Sprint(late) != "[open]" {
			t.Errorf("a late onState listener heard %v, want [open]", late)
		}
	})

	t.Run("on receives messages until it is unsubscribed", func(t *testing.T) {
		p := p.in(t)
		if got := eval[int](p, `wz.call("tick_me", {n: 1})`); got != 1 {
			t.Fatalf("tick_me returned %d", got)
		}
		p.waitEqual(`[first, second]`, [][]int{{1}, {1}})
		p.run(`offFirst()`)
		eval[int](p, `wz.call("tick_me", {n: 2})`)
		p.waitEqual(`[first, second]`, [][]int{{1}, {1, 2}})
		p.run(`offFirst()`) // a second call does nothing
		p.run(`offSecond()`)
		eval[int](p, `wz.call("tick_me", {n: 3})`)
		p.waitConsole(chromedp.ConsoleWarning, `the server sent a "tick" message, but this page has no handler for it`)
		p.waitEqual(`[first, second]`, [][]int{{1}, {1, 2}})
	})

	t.Run("the imported HANDLERS is the one messages go to", func(t *testing.T) {
		p := p.in(t)
		eval[int](p, `wz.call("tick_me", {n: 4})`)
		p.run(`wz.call("tock_me")`)
		p.waitEqual(`window.tock`, "tock")
	})

	t.Run("a typed call resolves with the handler's result", func(t *testing.T) {
		p := p.in(t)
		got := eval[map[string]any](p, `wz.call("sum", {a: 2, b: 40})`)
		if fmt.Sprint(got) != fmt.Sprint(map[string]any{"total": 42.0, "terms": []any{"2", "40"}}) {
			t.Errorf("sum returned %v", got)
		}
		got = eval[map[string]any](p, `wz.call("nope").catch((err) => ({name: err.name, isCallError: err instanceof wz.CallError, message: err.message}))`)
		if got["name"] != "CallError" || got["isCallError"] != true || !strings.Contains(fmt.Sprint(got["message"]), `no handler for "nope"`) {
			t.Errorf("calling an unknown op rejected with %v", got)
		}
	})

	t.Run("a call that times out rejects, and its late answer is dropped quietly", func(t *testing.T) {
		p := p.in(t)
		got := eval[string](p, `wz.call("slow", {}, {timeout: 50}).then((v) => "resolved: " + v, (err) => err.message)`)
		if want := `the server did not answer "slow" within 50 ms`; got != want {
			t.Errorf("the call settled with %q, want %q", got, want)
		}
		answerOnce.Do(func() { close(answerSlow) }) // now the late answer goes out
		// Handlers run one at a time: this answer comes after the late one.
		eval[int](p, `wz.call("tick_me", {n: 5})`)
		if p.consoleHas(chromedp.ConsoleWarning, `"_reply"`) {
			t.Errorf("the late answer was reported:\n%s", p.consoleText())
		}
	})

	p.noExceptions()
}

// testMountedUnderAPrefix mounts the server with http.StripPrefix in a mux:
// the page at /game/ loads the client from /game/ and the client finds the
// endpoint at /game/ws by itself, with the classic script and the module.
func testMountedUnderAPrefix(t *testing.T, browser context.Context) {
	s := wszero.New(quiet())
	s.On("add", func(c *wszero.Client, p struct{ A, B int }) int { return p.A + p.B })
	var mu sync.Mutex
	var paths []string // of the WebSocket upgrades
	mux := http.NewServeMux()
	mux.HandleFunc("GET /game/{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><script src="/game/wszero.js"></script>`)
	})
	mux.HandleFunc("GET /game/module.html", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><script type="module">
			import {call} from "/game/wszero.mjs";
			window.call = call;
		</script>`)
	})
	mux.Handle("/game/", http.StripPrefix("/game", s))
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			mu.Lock()
			paths = append(paths, r.URL.Path)
			mu.Unlock()
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		shutdown(t, s)
		ts.Close()
	})

	p := openPage(t, browser, ts.URL+"/game/")
	t.Run("classic script", func(t *testing.T) {
		p := p.in(t)
		p.waitFor(`typeof call === "function"`)
		if got := eval[int](p, `call("add", {a: 20, b: 22})`); got != 42 {
			t.Errorf("add returned %d", got)
		}
	})
	t.Run("ES module", func(t *testing.T) {
		p := p.in(t)
		p.navigate(ts.URL + "/game/module.html")
		p.waitFor(`typeof window.call === "function"`)
		if got := eval[int](p, `call("add", {a: 1, b: 2})`); got != 3 {
			t.Errorf("add returned %d", got)
		}
	})
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(paths) != "[/game/ws /game/ws]" {
		t.Errorf("the pages connected to %v, want /game/ws twice", paths)
	}
	p.noExceptions()
}

// crossOriginPage is served by one server and connects to another.
const crossOriginPage = `<!doctype html>
<script type="module">
import {connect, call, onState, connectionState} from "/wszero.mjs";
connect(new URLSearchParams(location.search).get("ws"));
window.states = [];
onState((state) => states.push(state));
window.wz = {call, connectionState};
</script>`

// testConnectToAnotherOrigin opens a page served by one server that calls
// connect(url) for a second server: the second server accepts it when its
// allow-list names the page's host, and refuses it otherwise.
func testConnectToAnotherOrigin(t *testing.T, browser context.Context) {
	var pageServerConnects atomic.Int32
	pageServer := wszero.New(quiet())
	pageServer.On("connect", func(c *wszero.Client) { pageServerConnects.Add(1) })
	pages := serve(t, pageServer, map[string]string{"/": crossOriginPage})
	pageHost := strings.TrimPrefix(pages.URL, "http://")

	allowing := wszero.New(quiet(), wszero.WithAllowedOrigins(pageHost))
	allowing.On("where", func(c *wszero.Client) string { return "the second server" })
	allowed := serve(t, allowing, nil)

	var refusedLog logSink
	refusing := wszero.New(refusedLog.option())
	refused := serve(t, refusing, nil)

	t.Run("allowed", func(t *testing.T) {
		p := openPage(t, browser, pages.URL+"/?ws="+wsURL(allowed)+"/ws")
		p.waitEqual(`wz.connectionState()`, "open")
		if got := eval[string](p, `wz.call("where")`); got != "the second server" {
			t.Errorf("the call reached %q", got)
		}
		if n := pageServerConnects.Load(); n != 0 {
			t.Errorf("the page also connected to the server that served it (%d times)", n)
		}
		p.noExceptions()
	})

	t.Run("refused without the allow-list", func(t *testing.T) {
		p := openPage(t, browser, pages.URL+"/?ws="+wsURL(refused)+"/ws")
		// The browser reports the refused handshake, and the client says
		// what to check.
		p.waitConsole(chromedp.ConsoleError, "403")
		m := p.waitConsole(chromedp.ConsoleWarning, "wszero: cannot connect to "+wsURL(refused)+"/ws")
		if hint := `wszero.WithAllowedOrigins("` + pageHost + `")`; !strings.Contains(m.Text, hint) {
			t.Errorf("the warning %q does not say %s", m.Text, hint)
		}
		p.waitFor(`states.includes("reconnecting")`)
		if got := eval[[]string](p, `states`); strings.Contains(strings.Join(got, " "), "open") {
			t.Errorf("the refused page's states are %v", got)
		}
		if log := refusedLog.String(); !strings.Contains(log, "connection refused: its page comes from another origin") {
			t.Errorf("the server did not log the refusal; it logged:\n%s", log)
		}
	})
}

// wsURL is the ws:// address of an httptest server.
func wsURL(ts *httptest.Server) string {
	return "ws" + strings.TrimPrefix(ts.URL, "http")
}

// testPageServerWithoutTheEndpoint: a page whose own server serves the
// client but not the endpoint (a dev server that does not forward /ws)
// says in the console what to do, and keeps trying.
func testPageServerWithoutTheEndpoint(t *testing.T, browser context.Context) {
	s := wszero.New(quiet())
	mux := http.NewServeMux()
	mux.Handle("GET /wszero.js", s) // the client only: /ws is not forwarded
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<!doctype html><script src="/wszero.js"></script>`)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		shutdown(t, s)
		ts.Close()
	})
	p := openPage(t, browser, ts.URL+"/")
	m := p.waitConsole(chromedp.ConsoleWarning, "wszero: cannot connect to "+wsURL(ts)+"/ws")
	for _, hint := range []string{"must forward /ws to wszero's", `connect("ws://localhost:8000/ws")`} {
		if !strings.Contains(m.Text, hint) {
			t.Errorf("the warning %q does not say %s", m.Text, hint)
		}
	}
	p.waitFor(`wszero.connectionState() === "reconnecting"`)
}
