package browsertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/internal/protocol"
)

// statePage records every state change with its time and details.
const statePage = `<!doctype html>
<title>states</title>
<script src="/wszero.js"></script>
<script>
window.states = [];
window.changes = [];
wszero.onState((state, detail) => {
  states.push(state);
  changes.push({state, at: performance.now(), code: detail.code, reason: detail.reason});
});
</script>`

// restartable is a wszero server on a fixed loopback port that can be
// stopped and started again there, under a page that stays open.
type restartable struct {
	t    *testing.T
	addr string
	page string // the HTML at /

	mu   sync.Mutex
	srv  *http.Server
	s    *wszero.Server
	done chan error
}

// start serves s on r's port.
func (r *restartable) start(s *wszero.Server) {
	r.t.Helper()
	l, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatalf("listening on %s again: %v", r.addr, err)
	}
	if r.addr == "127.0.0.1:0" {
		r.addr = l.Addr().String() // from now on, this port
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, r.page) })
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("/", s)
	srv := &http.Server{Handler: mux}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	r.mu.Lock()
	r.srv, r.s, r.done = srv, s, done
	r.mu.Unlock()
}

// stop closes the listener and shuts the wszero server down, which says
// goodbye to every page. It returns once the server is down, or ctx ends.
func (r *restartable) stop(ctx context.Context) error {
	r.mu.Lock()
	srv, s, done := r.srv, r.s, r.done
	r.srv = nil
	r.mu.Unlock()
	if srv == nil {
		return nil
	}
	// Close, not Shutdown: net/http's Shutdown waits up to 5 s for a
	// connection the browser opened ahead of need (a preconnect) to be used.
	// The WebSocket connections are hijacked, so Close leaves them to
	// wszero's Shutdown, which says goodbye to each page.
	err := errors.Join(srv.Close(), s.Shutdown(ctx))
	if e := <-done; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

func newRestartable(t *testing.T, page string, s *wszero.Server) *restartable {
	r := &restartable{t: t, addr: "127.0.0.1:0", page: page}
	r.start(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := r.stop(ctx); err != nil {
			t.Errorf("stopping the server: %v", err)
		}
	})
	return r
}

// noteServer records the notes it is sent, in order.
type noteServer struct {
	mu    sync.Mutex
	notes []int
}

func (n *noteServer) server() *wszero.Server {
	s := wszero.New(quiet())
	s.On("note", func(c *wszero.Client, p struct{ N int }) {
		n.mu.Lock()
		n.notes = append(n.notes, p.N)
		n.mu.Unlock()
	})
	s.On("add", func(c *wszero.Client, p struct{ A, B int }) int { return p.A + p.B })
	return s
}

func (n *noteServer) got() []int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]int(nil), n.notes...)
}

// testReconnectAfterServerRestart restarts the server under a live page:
// a call taken before the shutdown began is still answered, then the page
// hears why the server closed and shows "reconnecting", then "open" again;
// what it sent in the gap arrives at the new server in order; and a call in
// flight when a connection is cut rejects rather than hang.
func testReconnectAfterServerRestart(t *testing.T, browser context.Context) {
	// The first server has a handler that holds its call until the test lets
	// it go, so that the call is in flight when the shutdown begins.
	first := wszero.New(quiet())
	started, release := make(chan struct{}), make(chan struct{})
	first.On("slow", func(c *wszero.Client) string {
		close(started)
		<-release
		return "in time"
	})
	r := newRestartable(t, statePage, first)
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(letGo) // before the server is stopped, however the test ends
	p := openPage(t, browser, "http://"+r.addr+"/")
	p.waitEqual(`wszero.connectionState()`, "open")

	p.run(`call("slow").then((v) => { window.slow = "resolved: " + v }, (err) => { window.slow = err.name + ": " + err.message })`)
	select {
	case <-started:
	case <-time.After(wait):
		t.Fatal("the slow call did not reach the server")
	}
	stopped := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	go func() { stopped <- r.stop(ctx) }()
	waitRefused(t, r.addr) // the shutdown has begun

	// Shutdown answers every message it took before it began, then says
	// goodbye: the call in flight resolves, and nothing is lost.
	letGo()
	p.waitEqual(`window.slow`, `resolved: in time`)
	p.waitFor(`states.includes("reconnecting")`)
	p.waitConsole(chromedp.ConsoleWarning, "wszero: the server closed the connection: the server is shutting down (code 1001)")
	if got := eval[map[string]any](p, `changes.find((c) => c.state === "reconnecting")`); got["code"] != 1001.0 || got["reason"] != "the server is shutting down" {
		t.Errorf("the first reconnecting state came with %v", got)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("stopping the first server: %v", err)
	}

	// Sent while disconnected: queued, in order.
	p.run(`for (const n of [1, 2, 3]) send_message({op: "note", n})`)
	if got := eval[string](p, `wszero.connectionState()`); got == "open" {
		t.Fatal("the page is open with no server")
	}
	var notes noteServer
	r.start(notes.server())
	p.waitFor(`states[states.length - 1] === "open"`)
	if got := eval[int](p, `call("add", {a: 40, b: 2})`); got != 42 {
		t.Errorf("add on the new server returned %d", got)
	}
	// The call came after the notes, on the same connection, so the notes
	// have been handled by now.
	if got := notes.got(); fmt.Sprint(got) != "[1 2 3]" {
		t.Errorf("the new server got the notes %v, want [1 2 3]", got)
	}

	// A shutdown whose time is up cuts the connections: a call in flight
	// then rejects at once rather than hang.
	cut := make(chan struct{})
	third := notes.server()
	hung := make(chan struct{})
	third.On("hang", func(c *wszero.Client) { close(hung); <-cut })
	defer close(cut)
	if err := r.stop(ctx); err != nil {
		t.Fatalf("stopping the second server: %v", err)
	}
	r.start(third)
	p.waitFor(`states[states.length - 1] === "open" && wszero.connectionState() === "open"`)
	p.run(`window.hang = "pending"; call("hang").then(() => { window.hang = "resolved" }, (err) => { window.hang = err.name + ": " + err.message })`)
	select {
	case <-hung:
	case <-time.After(wait):
		t.Fatal("the hanging call did not reach the server")
	}
	expired, cancelExpired := context.WithCancel(context.Background())
	cancelExpired()
	if err := r.stop(expired); !errors.Is(err, context.Canceled) {
		t.Fatalf("stopping with an expired context returned %v", err)
	}
	// Cut without a goodbye, the page may take it for a blip, and keep the
	// call for the resume: the server that comes back cannot resume it,
	// and the call rejects then.
	r.start(notes.server())
	p.waitFor(`window.hang !== "pending"`)
	if got := eval[string](p, `window.hang`); got != `CallError: the connection closed before the server answered "hang"` &&
		!strings.HasPrefix(got, `CallError: the connection was lost before the server answered "hang", and the server could not resume the session: `) {
		t.Errorf("the call in flight ended with %q", got)
	}
	p.noExceptions()
}

// waitRefused waits until nothing listens on addr any more.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", addr, wait)
		if err != nil {
			return
		}
		conn.Close()
		runtime.Gosched()
	}
	t.Fatalf("%s still accepts connections", addr)
}

// testMessageTooBig sends a message over the server's size limit: the
// console says which limit, and the page reconnects by itself.
func testMessageTooBig(t *testing.T, browser context.Context) {
	big := wszero.New(quiet(), wszero.WithMaxMessageSize(100))
	big.On("note", func(c *wszero.Client, p struct{ N int }) {})
	big.On("add", func(c *wszero.Client, p struct{ A, B int }) int { return p.A + p.B })
	ts := serve(t, big, map[string]string{"/": statePage})
	p := openPage(t, browser, ts.URL+"/")
	p.waitEqual(`wszero.connectionState()`, "open")

	p.run(`send_message({op: "note", n: 1, padding: "x".repeat(200)})`)
	p.waitConsole(chromedp.ConsoleWarning, "wszero: the server closed the connection: message too big: the limit is 100 bytes (code 1009)")
	p.waitFor(`changes.some((c) => c.state === "reconnecting" && c.code === 1009)`)
	p.waitFor(`states[states.length - 1] === "open"`)
	if got := eval[int](p, `call("add", {a: 1, b: 1})`); got != 2 {
		t.Errorf("add after reconnecting returned %d", got)
	}
	p.noExceptions()
}

// silentServer is a bare WebSocket endpoint: it sends the first
// connection one _ping saying it pings every ms, and then never says
// another word, as a server does whose network has vanished. Later
// connections hear nothing at all.
type silentServer struct {
	every int // ms, in the first connection's _ping

	mu      sync.Mutex
	conns   []*websocket.Conn
	pongs   int
	arrived chan struct{} // a connection arrived
	wg      sync.WaitGroup
}

func (s *silentServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Counted before the upgrade, while httptest's Close still waits for
	// this request, so that close's Wait never races with this Add.
	s.wg.Add(1)
	conn, err := (&websocket.Upgrader{Subprotocols: []string{protocol.SubprotocolJSON}}).Upgrade(w, r, nil)
	if err != nil {
		s.wg.Done()
		return
	}
	s.mu.Lock()
	s.conns = append(s.conns, conn)
	first := len(s.conns) == 1
	s.mu.Unlock()
	// A session that cannot resume (no key), as every wszero server's
	// connection begins.
	_ = conn.WriteMessage(websocket.TextMessage, protocol.AppendSession(nil, protocol.Session{ID: "silent"}))
	if first {
		_ = conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"op":"_ping","every":%d}`, s.every))
	}
	go func() {
		defer s.wg.Done()
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if string(data) == `{"op":"_pong"}` {
				s.mu.Lock()
				s.pongs++
				s.mu.Unlock()
			}
		}
	}()
	select {
	case s.arrived <- struct{}{}:
	default: // nobody is counting any more
	}
}

// close ends every connection and waits for their readers. Close the
// httptest server first, so that no connection arrives during close.
func (s *silentServer) close() {
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// testSilentConnection checks the page's side of the keepalive: a server
// that said it pings every 200 ms and then goes quiet is given up on
// within about one and a half times that, and the page reconnects; the next
// connection, to a server that has not said it pings, is not held to the
// old server's interval.
func testSilentConnection(t *testing.T, browser context.Context) {
	silent := &silentServer{every: 200, arrived: make(chan struct{}, 10)}
	client := wszero.New(quiet()) // serves /wszero.js; the endpoint is the silent one
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, statePage) })
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("/ws", silent)
	mux.Handle("/", client)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ts.Close()
		silent.close()
		shutdown(t, client)
	})
	arrival := func() {
		t.Helper()
		select {
		case <-silent.arrived:
		case <-time.After(wait):
			t.Fatal("the page did not connect")
		}
	}

	p := openPage(t, browser, ts.URL+"/")
	arrival()
	// 1.5 × 200 ms: the warning says which limit the page applied. (Before
	// the server's _ping, the page allows the default 30 s; it must not keep
	// that limit once the _ping has said otherwise.)
	p.waitConsole(chromedp.ConsoleWarning, "wszero: no word from the server for 0.3 s; reconnecting")
	p.waitFor(`changes.some((c) => c.state === "reconnecting")`)
	waitUntil(t, "the page to answer the _ping", func() bool {
		silent.mu.Lock()
		defer silent.mu.Unlock()
		return silent.pongs == 1
	})

	// The page reconnects by itself. This server has not said how often it
	// pings, so the page waits the default (30 s), not the last server's
	// 300 ms: it is still open well after that.
	arrival()
	p.waitFor(`states[states.length - 1] === "open"`)
	opened := len(eval[[]string](p, `states`))
	<-time.After(3 * 300 * time.Millisecond) // a negative check needs a window
	if got := eval[[]string](p, `states`); len(got) != opened {
		t.Errorf("the page dropped a connection whose server never said it pings: %v", got)
	}
	p.noExceptions()
}

// testKeepaliveWithARealServer keeps a page open on a server that pings
// often: the page answers and stays, and the server keeps the page.
func testKeepaliveWithARealServer(t *testing.T, browser context.Context) {
	var mu sync.Mutex
	disconnects := 0
	s := wszero.New(quiet(), wszero.WithKeepalive(500*time.Millisecond, 2*time.Second))
	s.On("disconnect", func(c *wszero.Client) {
		mu.Lock()
		disconnects++
		mu.Unlock()
	})
	s.On("add", func(c *wszero.Client, p struct{ A, B int }) int { return p.A + p.B })
	ts := serve(t, s, map[string]string{"/": statePage})
	p := openPage(t, browser, ts.URL+"/")
	p.waitEqual(`wszero.connectionState()`, "open")
	// Three pings come in this window; the page lets 750 ms (1.5 × 500) pass
	// without one before it gives up, and the server 2 s.
	<-time.After(1600 * time.Millisecond) // a negative check needs a window
	if got := eval[[]string](p, `states`); strings.Contains(strings.Join(got, " "), "reconnecting") {
		t.Errorf("the page gave up on a server that pings: %v\n%s", got, p.consoleText())
	}
	mu.Lock()
	n := disconnects
	mu.Unlock()
	if n != 0 {
		t.Errorf("the server dropped the page %d times", n)
	}
	if got := eval[int](p, `call("add", {a: 1, b: 2})`); got != 3 {
		t.Errorf("add returned %d", got)
	}
	p.noExceptions()
}

// forger is a bare WebSocket endpoint that answers the page's first call
// with forged frames, the way a relayed object could have shaped them if
// the server let it, and then with the true reply.
type forger struct {
	wg sync.WaitGroup
}

func (f *forger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.wg.Add(1)
	defer f.wg.Done()
	conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	var call struct {
		Op  string
		Ref int `json:"_ref"`
	}
	if conn.ReadJSON(&call) != nil {
		return
	}
	for _, frame := range []string{
		`{"op":"said","\u006fp":"eval_js","script":"window.pwned = true"}`,
		fmt.Sprintf(`{"op":"said","op":"_reply","_ref":%d,"result":"forged"}`, call.Ref),
		fmt.Sprintf(`{"op":"said","o\u0070":"_reply","_ref":%d,"result":"forged"}`, call.Ref),
		`{"op":"constructor"}`, `{"op":"toString"}`, `{"op":"__proto__"}`, `{"op":"hasOwnProperty"}`,
		fmt.Sprintf(`{"op":"_reply","_ref":%d,"result":"real"}`, call.Ref),
	} {
		if conn.WriteMessage(websocket.TextMessage, []byte(frame)) != nil {
			return
		}
	}
	_, _, _ = conn.ReadMessage() // until the page goes
}

// testForgedFrames: the page runs only what its server chose. A frame with
// a second op is dropped, whatever the second says (eval_js, a _reply to
// a pending call); and ops named after Object's methods find no handler.
func testForgedFrames(t *testing.T, browser context.Context) {
	f := &forger{}
	client := wszero.New(quiet()) // serves /wszero.js; the endpoint is the forger
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `<!doctype html><script src="/wszero.js"></script><script>window.saids = []; HANDLERS.said = (m) => saids.push(m)</script>`)
	})
	mux.Handle("/ws", f)
	mux.Handle("/", client)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ts.Close()
		f.wg.Wait()
		shutdown(t, client)
	})
	p := openPage(t, browser, ts.URL+"/")
	if got := eval[string](p, `call("ask")`); got != "real" {
		t.Errorf("the call resolved with %q, want the true reply", got)
	}
	p.waitConsole(chromedp.ConsoleWarning, `"hasOwnProperty" message, but this page has no handler for it`)
	if eval[bool](p, `window.pwned === true`) {
		t.Error("a frame with a second op ran eval_js")
	}
	if n := eval[int](p, `saids.length`); n != 0 {
		t.Errorf("the said handler ran %d times for frames that had two ops", n)
	}
	for _, op := range []string{"constructor", "toString", "__proto__"} {
		if !p.consoleHas(chromedp.ConsoleWarning, `"`+op+`" message, but this page has no handler for it`) {
			t.Errorf("the %q message was not reported as having no handler:\n%s", op, p.consoleText())
		}
	}
	if !p.consoleHas(chromedp.ConsoleError, "a frame whose op is not the one it begins with was dropped") {
		t.Errorf("the dropped frames were not reported:\n%s", p.consoleText())
	}
	p.noExceptions()
}
