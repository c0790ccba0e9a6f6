package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/internal/cutproxy"
	"github.com/wszero/wszero/internal/protocol"
)

// resumePage records what it hears, each kind in order, and every "open"
// the client reports with its detail. The page is loaded through the
// proxy, so its socket goes through it too (and its origin is the
// proxy's).
const resumePage = `<!doctype html>
<title>resume</title>
<script src="/wszero.js"></script>
<script>
window.ticks = [];
window.directs = [];
window.hellos = [];
window.onces = 0;
window.states = [];
window.opens = [];
HANDLERS.tick = (m) => ticks.push(m.n);
HANDLERS.direct = (m) => directs.push(m.n);
HANDLERS.hello = (m) => hellos.push(m.id);
HANDLERS.once = () => onces++;
wszero.onState((state, detail) => {
  states.push(state);
  if (state === "open") opens.push(detail);
});
window.notes = 0;
window.startNotes = () => { window.noting = setInterval(() => send_message({op: "note", n: notes++}), 20); };
window.stopNotes = () => { clearInterval(window.noting); return notes; };
window.settle = (name, promise) => {
  window[name] = "pending";
  promise.then((v) => { window[name] = v; }, (err) => { window[name] = err.name + ": " + err.message; });
};
</script>`

// resumeServer is a server for resumePage that counts what happens to
// its clients.
type resumeServer struct {
	s    *wszero.Server
	gone chan string // the ID of each client whose disconnect handler ran
	cut  chan struct{}

	mu                    sync.Mutex
	connects, aways, back int
	notes                 map[string][]int // by client ID
	onCut                 func()
}

// newResumeServer makes a server whose "cut" handler runs the function
// given to setCut (which cuts the network) and then answers: a call in
// flight when the connection drops.
func newResumeServer(opts ...wszero.Option) *resumeServer {
	r := &resumeServer{gone: make(chan string, 8), cut: make(chan struct{}, 8), notes: map[string][]int{}}
	s := wszero.New(append([]wszero.Option{quiet()}, opts...)...)
	s.On("connect", func(c *wszero.Client) error {
		r.mu.Lock()
		r.connects++
		r.mu.Unlock()
		return c.Send("hello", wszero.Params{"id": c.ID()})
	})
	s.On("disconnect", func(c *wszero.Client) { r.gone <- c.ID() })
	s.On("client_away", func(c *wszero.Client) {
		r.mu.Lock()
		r.aways++
		r.mu.Unlock()
	})
	s.On("client_back", func(c *wszero.Client) {
		r.mu.Lock()
		r.back++
		r.mu.Unlock()
	})
	s.On("join", func(c *wszero.Client, p struct{ Name string }) (string, error) {
		c.Set("name", p.Name)
		return c.ID(), c.AddToGroup("room")
	})
	s.On("note", func(c *wszero.Client, p struct{ N int }) {
		r.mu.Lock()
		r.notes[c.ID()] = append(r.notes[c.ID()], p.N)
		r.mu.Unlock()
	})
	s.On("ask", func(c *wszero.Client, p struct{ N int }) int { return 2 * p.N })
	s.On("whoami", func(c *wszero.Client) string { return c.ID() })
	s.On("cut", func(c *wszero.Client) string {
		r.mu.Lock()
		cut := r.onCut
		r.mu.Unlock()
		cut()
		r.cut <- struct{}{}
		return "answered after the blip"
	})
	r.s = s
	return r
}

func (r *resumeServer) setCut(fn func()) {
	r.mu.Lock()
	r.onCut = fn
	r.mu.Unlock()
}

// counts returns how many times connect, client_away and client_back ran.
func (r *resumeServer) counts() (connects, aways, back int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.connects, r.aways, r.back
}

func (r *resumeServer) notesOf(id string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.notes[id])
}

// client returns the server's client with that ID, or nil.
func (r *resumeServer) client(id string) *wszero.Client {
	for _, c := range r.s.Clients() {
		if c.ID() == id {
			return c
		}
	}
	return nil
}

// waitCut waits for the cut handler to have cut the network.
func (r *resumeServer) waitCut(t *testing.T) {
	t.Helper()
	select {
	case <-r.cut:
	case <-time.After(wait):
		t.Fatal("the page's cut call did not reach the server")
	}
}

// waitGone waits for the disconnect handler of the client id.
func (r *resumeServer) waitGone(t *testing.T, id string) {
	t.Helper()
	select {
	case got := <-r.gone:
		if got != id {
			t.Fatalf("the disconnect handler ran for %s, want %s", got, id)
		}
	case <-time.After(wait):
		t.Fatalf("the disconnect handler of %s did not run", id)
	}
}

// pageThroughProxy starts a proxy in front of r's server and opens the
// page through it. The page joins the room as "ann" and returns its ID.
func pageThroughProxy(t *testing.T, browser context.Context, r *resumeServer) (*page, *cutproxy.Proxy, string) {
	t.Helper()
	ts := serve(t, r.s, map[string]string{"/": resumePage})
	proxy := cutproxy.Start(t, ts.Listener.Addr().String())
	p := openPage(t, browser, "http://"+proxy.Addr()+"/")
	id := eval[string](p, `call("join", {name: "ann"})`)
	p.waitEqual(`hellos`, []string{id})
	p.waitEqual(`opens`, []map[string]any{{"resumed": false}})
	return p, proxy, id
}

// sequence returns 0, 1, …, n-1.
func sequence(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// checkSequence fails the test unless got is 0, 1, …, n-1: nothing lost,
// doubled or out of order.
func checkSequence(t *testing.T, what string, got []int, n int) {
	t.Helper()
	if slices.Equal(got, sequence(n)) {
		return
	}
	var problems []string
	seen := map[int]int{}
	for i, v := range got {
		if seen[v]++; seen[v] == 2 {
			problems = append(problems, fmt.Sprintf("%d twice", v))
		}
		if i > 0 && v < got[i-1] {
			problems = append(problems, fmt.Sprintf("%d after %d", v, got[i-1]))
		}
	}
	for v := range n {
		if seen[v] == 0 {
			problems = append(problems, fmt.Sprintf("%d missing", v))
		}
	}
	t.Errorf("%s: got %d of %d, not 0…%d in order (%s): %v", what, len(got), n, n-1, strings.Join(problems, ", "), got)
}

// senders broadcasts {n} to the room every 50 ms and sends {n} to one
// client by ID every 70 ms, each n from 0, until stop.
type senders struct {
	ticks, directs atomic.Int64 // how many were sent
	stop           chan struct{}
	wg             sync.WaitGroup
}

func startSenders(t *testing.T, s *wszero.Server, to string) *senders {
	ss := &senders{stop: make(chan struct{})}
	every := func(d time.Duration, count *atomic.Int64, send func(n int) error) {
		ss.wg.Add(1)
		go func() {
			defer ss.wg.Done()
			tick := time.NewTicker(d)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-ss.stop:
					return
				case <-tick.C:
				}
				if err := send(n); err != nil {
					t.Errorf("sending %d: %v", n, err)
					return
				}
				count.Store(int64(n + 1))
			}
		}()
	}
	every(50*time.Millisecond, &ss.ticks, func(n int) error { return s.BroadcastTo("room", "tick", wszero.Params{"n": n}) })
	every(70*time.Millisecond, &ss.directs, func(n int) error { return s.SendTo(to, "direct", wszero.Params{"n": n}) })
	t.Cleanup(func() { ss.halt() })
	return ss
}

// halt stops the senders and waits for them; it returns how many ticks
// and direct messages were sent.
func (ss *senders) halt() (ticks, directs int) {
	select {
	case <-ss.stop:
	default:
		close(ss.stop)
	}
	ss.wg.Wait()
	return int(ss.ticks.Load()), int(ss.directs.Load())
}

// testResumeAfterABlip: the scenario. The page is in a group with
// state; the server broadcasts to the group every 50 ms and sends to the
// page by ID every 70 ms, and the page sends a note every 20 ms. Its
// network goes down for 2 s while a call of it is in flight (the handler
// answers after cutting), and it makes another call in the gap. It comes
// back as the same client, nothing lost or doubled either way, both calls
// answered. Then its connection goes stale (the server is not told) and
// the page resumes again, taking the stale connection over.
func testResumeAfterABlip(t *testing.T, browser context.Context) {
	// The short keepalive makes the page's silence timer short too (1.5 ×
	// 300 ms), should it not hear its socket close; the server's timeout is
	// long, so that it does not notice the stale connection by itself.
	r := newResumeServer(wszero.WithKeepalive(300*time.Millisecond, 5*time.Second))
	p, proxy, id := pageThroughProxy(t, browser, r)
	r.setCut(proxy.Down)
	send := startSenders(t, r.s, id)
	p.waitFor(`ticks.length >= 5 && directs.length >= 3`)
	p.run(`startNotes()`)
	waitUntil(t, "the first notes", func() bool { return len(r.notesOf(id)) >= 5 })

	// The blip: the handler of a call takes the network down, then answers.
	// Notes sent right behind the call are on their way when it does.
	p.run(`settle("cutAnswer", call("cut")); for (let i = 0; i < 50; i++) send_message({op: "note", n: notes++})`)
	r.waitCut(t)
	gap := time.NewTimer(2 * time.Second)
	defer gap.Stop()
	p.waitFor(`states[states.length - 1] === "reconnecting"`)
	waitUntil(t, "the server to see the page away", func() bool {
		c := r.client(id)
		return c != nil && c.Away()
	})
	p.run(`settle("asked", call("ask", {n: 21}))`) // sent in the gap: it waits
	if got := eval[[]string](p, `[cutAnswer, asked]`); !slices.Equal(got, []string{"pending", "pending"}) {
		t.Errorf("in the gap, the calls are %v; they should wait for the session to resume", got)
	}
	<-gap.C
	proxy.Up()

	p.waitFor(`opens.length === 2`)
	detail := eval[map[string]any](p, `opens[1]`)
	if missed, _ := detail["missed"].(float64); detail["resumed"] != true || missed <= 0 {
		t.Errorf(`after the blip, onState reported "open" with %v; want resumed true and missed > 0`, detail)
	}
	p.waitEqual(`cutAnswer`, "answered after the blip")
	p.waitEqual(`asked`, 42)
	if got := eval[string](p, `call("whoami")`); got != id {
		t.Errorf("after the blip the page is %s, want %s", got, id)
	}
	checkClient := func(when string) {
		t.Helper()
		clients := r.s.Clients()
		if len(clients) != 1 || clients[0].ID() != id {
			t.Fatalf("%s the server has clients %v, want only %s", when, clients, id)
		}
		c := clients[0]
		if c.Away() {
			t.Errorf("%s the client is away", when)
		}
		if got := c.Groups(); !slices.Equal(got, []string{"room"}) {
			t.Errorf("%s the client is in groups %v, want [room]", when, got)
		}
		if got := c.Get("name"); got != "ann" {
			t.Errorf(`%s the client's "name" is %v, want ann`, when, got)
		}
	}
	checkClient("after the blip")
	if connects, aways, back := r.counts(); connects != 1 || aways != 1 || back != 1 {
		t.Errorf("after the blip connect ran %d times, client_away %d, client_back %d; want 1, 1, 1", connects, aways, back)
	}

	// Stale: the proxy closes the page's side only, and keeps the server's
	// open and silent. The page reconnects and resumes; the server closes
	// the stale connection at once and keeps one link. It was never away:
	// client_away does not run. (Ten times over: a takeover races with the
	// end of the stale connection's reader.)
	const stale = 10
	for i := range stale {
		proxy.Stall()
		p.waitFor(fmt.Sprintf(`opens.length === %d`, 3+i))
		detail = eval[map[string]any](p, fmt.Sprintf(`opens[%d]`, 2+i))
		if detail["resumed"] != true {
			t.Fatalf(`after stale connection %d, onState reported "open" with %v; want resumed true`, i+1, detail)
		}
		if got := eval[string](p, `call("whoami")`); got != id {
			t.Fatalf("after stale connection %d the page is %s, want %s", i+1, got, id)
		}
	}
	checkClient("after the stale connections")
	if err := r.s.Broadcast("once", nil); err != nil {
		t.Fatal(err)
	}
	p.waitEqual(`onces`, 1)
	eval[int](p, `call("ask", {n: 1})`) // a round trip after the broadcast: a second copy would be here by now
	if got := eval[int](p, `onces`); got != 1 {
		t.Errorf("a broadcast reached the page %d times", got)
	}

	// The end: everything sent, either way, arrived once and in order.
	ticks, directs := send.halt()
	notes := eval[int](p, `stopNotes()`)
	p.waitFor(fmt.Sprintf(`ticks.length >= %d && directs.length >= %d`, ticks, directs))
	t.Logf("sent %d ticks, %d direct messages and %d notes; the blip's resume replayed %v messages", ticks, directs, notes, eval[any](p, `opens[1].missed`))
	checkSequence(t, "the ticks the page got", eval[[]int](p, `ticks`), ticks)
	checkSequence(t, "the direct messages the page got", eval[[]int](p, `directs`), directs)
	for deadline := time.Now().Add(wait); len(r.notesOf(id)) < notes && time.Now().Before(deadline); {
		<-time.After(pollEvery)
	}
	checkSequence(t, "the notes the server handled", r.notesOf(id), notes)
	eval[int](p, `call("ask", {n: 1})`)
	if connects, aways, back := r.counts(); connects != 1 || aways != 1 || back != 1 {
		// A stale connection taken over is no time away: client_away would
		// show the page away in a teacher's list with no client_back to end it.
		t.Errorf("at the end connect ran %d times, client_away %d, client_back %d; want 1, 1, 1 (the blip's; none for the %d stale connections taken over)", connects, aways, back, stale)
	}
	if got := eval[[]string](p, `hellos`); !slices.Equal(got, []string{id}) {
		t.Errorf("the page was greeted as %v, want only %s", got, id)
	}
	p.noExceptions()
}

// testResumeWindowPassed: the page comes back after its session ended.
// It is a new client (connect runs, a new ID, no groups), told so by
// onState, the call it had in flight rejects in words, what it sent
// before the drop is not sent again, and what it sent in the gap is.
func testResumeWindowPassed(t *testing.T, browser context.Context) {
	r := newResumeServer(wszero.WithResumeWindow(300 * time.Millisecond))
	p, proxy, id := pageThroughProxy(t, browser, r)
	r.setCut(proxy.Down)
	p.run(`send_message({op: "note", n: 1})`)
	waitUntil(t, "the note", func() bool { return len(r.notesOf(id)) == 1 })

	p.run(`settle("cutAnswer", call("cut"))`)
	r.waitCut(t)
	r.waitGone(t, id) // the window passed: the session has ended
	p.waitFor(`states[states.length - 1] === "reconnecting"`)
	p.run(`send_message({op: "note", n: 2})`)
	proxy.Up()

	p.waitFor(`opens.length === 2`)
	detail := eval[map[string]any](p, `opens[1]`)
	why, _ := detail["why"].(string)
	if detail["resumed"] != false || !strings.Contains(why, "the session has ended") {
		t.Errorf(`after the window passed, onState reported "open" with %v; want resumed false and why the session could not be resumed`, detail)
	}
	want := `CallError: the connection was lost before the server answered "cut", and the server could not resume the session: ` + why
	p.waitEqual(`cutAnswer`, want)
	p.waitFor(`hellos.length === 2`)
	hellos := eval[[]string](p, `hellos`)
	newID := hellos[1]
	if hellos[0] != id || newID == id {
		t.Errorf("the page was greeted as %v, want %s then a new ID", hellos, id)
	}
	if got := eval[string](p, `call("whoami")`); got != newID {
		t.Errorf("the page is %s, want %s", got, newID)
	}
	if connects, _, _ := r.counts(); connects != 2 {
		t.Errorf("connect ran %d times, want 2", connects)
	}
	c := r.client(newID)
	if c == nil || len(r.s.Clients()) != 1 {
		t.Fatalf("the server has clients %v, want only %s", r.s.Clients(), newID)
	}
	if len(c.Groups()) != 0 || c.Get("name") != nil {
		t.Errorf("the new client has groups %v and name %v", c.Groups(), c.Get("name"))
	}
	if got := r.notesOf(newID); !slices.Equal(got, []int{2}) {
		t.Errorf("the new client's notes are %v, want [2]: only what the page sent in the gap", got)
	}
	if got := r.notesOf(id); !slices.Equal(got, []int{1}) {
		t.Errorf("the old client's notes are %v, want [1]", got)
	}
	p.noExceptions()
}

// testResumeAfterServerRestart: the page's reconnection reaches another
// server (a restart, behind the same address), which does not know its
// session: the page is a new client there, connect runs there, and the
// call in flight on the first server rejects in words.
func testResumeAfterServerRestart(t *testing.T, browser context.Context) {
	first, second := newResumeServer(), newResumeServer()
	ts2 := serve(t, second.s, map[string]string{"/": resumePage})
	p, proxy, id := pageThroughProxy(t, browser, first)
	first.setCut(func() {
		proxy.SetBackend(ts2.Listener.Addr().String())
		proxy.Cut()
	})
	p.run(`settle("cutAnswer", call("cut"))`)
	first.waitCut(t)

	p.waitFor(`opens.length === 2`)
	detail := eval[map[string]any](p, `opens[1]`)
	why, _ := detail["why"].(string)
	if detail["resumed"] != false || !strings.Contains(why, "the server restarted") {
		t.Errorf(`on the new server, onState reported "open" with %v; want resumed false and why`, detail)
	}
	p.waitEqual(`cutAnswer`, `CallError: the connection was lost before the server answered "cut", and the server could not resume the session: `+why)
	p.waitFor(`hellos.length === 2`)
	hellos := eval[[]string](p, `hellos`)
	if hellos[0] != id || hellos[1] == id {
		t.Errorf("the page was greeted as %v, want %s then a new ID", hellos, id)
	}
	if connects, _, _ := second.counts(); connects != 1 {
		t.Errorf("connect ran %d times on the new server, want 1", connects)
	}
	if got := eval[string](p, `call("whoami")`); got != hellos[1] || second.client(got) == nil {
		t.Errorf("the page is %s on the new server, want %s", got, hellos[1])
	}
	if c := first.client(id); c == nil || !c.Away() {
		t.Errorf("the first server's client is %v; want it away until its window passes", c)
	}
	p.noExceptions()
}

// scripted is a bare WebSocket endpoint that speaks the session protocol
// as the test says, one frame at a time: each connection is handed to the
// test, with what it offered and what it sends.
type scripted struct {
	conns chan *peer
	wg    sync.WaitGroup
}

// peer is one connection to scripted.
type peer struct {
	t       *testing.T
	conn    *websocket.Conn
	offered []string      // the subprotocols the page offered
	frames  chan string   // what the page sent, but _pong
	done    chan struct{} // closed when the page's side has ended; err says how
	err     error
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.wg.Add(1) // before the upgrade, while httptest's Close still waits for this request
	conn, err := (&websocket.Upgrader{Subprotocols: []string{"wszero.json"}}).Upgrade(w, r, nil)
	if err != nil {
		s.wg.Done()
		return
	}
	p := &peer{conn: conn, offered: websocket.Subprotocols(r), frames: make(chan string, 256), done: make(chan struct{})}
	go func() {
		defer s.wg.Done()
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				p.err = err
				close(p.done)
				return
			}
			if string(data) != `{"op":"_pong"}` {
				p.frames <- string(data)
			}
		}
	}()
	s.conns <- p
}

// next waits for the page's next connection.
func (s *scripted) next(t *testing.T) *peer {
	t.Helper()
	select {
	case p := <-s.conns:
		p.t = t
		t.Cleanup(func() { p.conn.Close() })
		return p
	case <-time.After(wait):
		t.Fatal("the page did not connect")
		return nil
	}
}

// send writes frames to the page.
func (p *peer) send(frames ...string) {
	p.t.Helper()
	for _, f := range frames {
		if err := p.conn.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
			p.t.Fatalf("writing %s: %v", f, err)
		}
	}
}

// expect waits for the page's next frame and checks that it is want (as
// JSON, whatever the order of keys).
func (p *peer) expect(want string) {
	p.t.Helper()
	select {
	case got := <-p.frames:
		if !sameJSON(got, want) {
			p.t.Fatalf("the page sent %s, want %s", got, want)
		}
	case <-p.done:
		p.t.Fatalf("the connection ended (%v) before the page sent %s", p.err, want)
	case <-time.After(wait):
		p.t.Fatalf("the page did not send %s", want)
	}
}

// closedWith waits for the page to close the connection, and checks its code.
func (p *peer) closedWith(code int) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(wait):
		p.t.Fatalf("the page did not close the connection")
	}
	var ce *websocket.CloseError
	if !errors.As(p.err, &ce) || ce.Code != code {
		p.t.Errorf("the page closed the connection with %v, want code %d", p.err, code)
	}
}

func sameJSON(a, b string) bool {
	var x, y any
	return json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}

// testResumeProtocol checks the page's side of the session protocol
// frame by frame, against a scripted server: the subprotocols it offers,
// what it counts (a frame it cannot read or drops too; not _session,
// _ping), its acknowledgements (1 s after the first message, or at
// protocol.AckEvery),
// the close code of a connection it gives up on (4000), _resume as the
// first frame and nothing else before _session, what it sends again after
// a resume and in which order, and a server's 1001, which ends the session.
func testResumeProtocol(t *testing.T, browser context.Context) {
	srv := &scripted{conns: make(chan *peer, 8)}
	client := wszero.New(quiet()) // serves /wszero.js; the endpoint is the scripted one
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, resumePage) })
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("/ws", srv)
	mux.Handle("/", client)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ts.Close()
		srv.wg.Wait() // the peers' Cleanups, which ran before this one, closed them
		shutdown(t, client)
	})
	p := openPage(t, browser, ts.URL+"/")

	// A new session: the page offers wszero.json alone, and is open once
	// the server's _session has come, not before.
	c1 := srv.next(t)
	if !slices.Equal(c1.offered, []string{"wszero.json"}) {
		t.Errorf("the first connection offered %v, want [wszero.json]", c1.offered)
	}
	p.run(`send_message({op: "note", n: 0})`)
	if got := eval[string](p, `wszero.connectionState()`); got == "open" {
		t.Error(`the page is "open" before the server's _session`)
	}
	c1.send(`{"op":"_session","id":"page-1","key":"k1","resumed":false}`, `{"op":"_ping","every":200}`)
	p.waitEqual(`opens`, []map[string]any{{"resumed": false}})
	c1.expect(`{"op":"note","n":0}`) // queued until _session

	// Four numbered frames, one not JSON and one dropped for its two ops:
	// the page counts all four.
	c1.send(`{"op":"tick","n":0}`, `not json`, `{"op":"tick","op":"tock"}`, `{"op":"tick","n":1}`)
	p.waitEqual(`ticks`, []int{0, 1})
	p.run(`send_message({op: "note", n: 1}); settle("asked", call("ask", {n: 21}))`)
	c1.expect(`{"op":"note","n":1}`)
	c1.expect(`{"op":"ask","n":21,"_ref":1}`)
	// Within a second of the first frame, the page says how many came
	// (the test keeps the connection alive meanwhile).
	acked := false
	for deadline := time.Now().Add(wait); !acked && time.Now().Before(deadline); {
		select {
		case f := <-c1.frames:
			if !sameJSON(f, `{"op":"_ack","seen":4}`) {
				t.Fatalf("the page sent %s, want its _ack of 4", f)
			}
			acked = true
		case <-time.After(100 * time.Millisecond):
			c1.send(`{"op":"_ping","every":200}`)
		}
	}
	if !acked {
		t.Fatal("the page did not acknowledge what it received")
	}

	// The server goes quiet: after 300 ms the page gives up on the
	// connection with 4000, which leaves the session to be resumed.
	c1.closedWith(4000)
	p.waitFor(`states[states.length - 1] === "reconnecting"`)
	p.run(`send_message({op: "note", n: 2})`) // queued
	if got := eval[string](p, `asked`); got != "pending" {
		t.Errorf("the call in flight settled with %q when the connection dropped; it should wait for the resume", got)
	}

	// It resumes: wszero.resume offered, _resume first, then nothing until
	// _session. The server says it got one message (note 0): the page sends
	// the rest again, in order, then what it queued.
	c2 := srv.next(t)
	if !slices.Equal(c2.offered, []string{"wszero.json", "wszero.resume"}) {
		t.Errorf("the resuming connection offered %v, want [wszero.json wszero.resume]", c2.offered)
	}
	// sent: note 0, note 1 and the call were numbered 0 to 2.
	c2.expect(`{"op":"_resume","id":"page-1","key":"k1","seen":4,"sent":3}`)
	select {
	case f := <-c2.frames:
		t.Fatalf("the page sent %s before the server's _session", f)
	case <-time.After(200 * time.Millisecond): // a negative check needs a window
	}
	c2.send(`{"op":"_session","id":"page-1","key":"k2","resumed":true,"missed":1,"got":1}`, `{"op":"tick","n":2}`)
	c2.expect(`{"op":"note","n":1}`)
	c2.expect(`{"op":"ask","n":21,"_ref":1}`)
	c2.expect(`{"op":"note","n":2}`)
	// protocol.AckEvery messages since the last _ack (the tick, a reply,
	// and more ticks): the page says so at once, with the count at the
	// last of them (4 + AckEvery), not a second after the first.
	c2.send(`{"op":"_reply","_ref":1,"result":42}`)
	for n := 3; n <= protocol.AckEvery; n++ {
		c2.send(fmt.Sprintf(`{"op":"tick","n":%d}`, n))
	}
	c2.expect(fmt.Sprintf(`{"op":"_ack","seen":%d}`, 4+protocol.AckEvery))
	p.waitEqual(`opens[1]`, map[string]any{"resumed": true, "missed": 1})
	p.waitEqual(`asked`, 42)
	p.waitEqual(`ticks`, sequence(protocol.AckEvery+1))

	// A server that closes with 1001 has ended the session: a call in
	// flight rejects at once, and the page starts a new session.
	p.run(`settle("second", call("ask", {n: 1}))`)
	c2.expect(`{"op":"ask","n":1,"_ref":2}`)
	c2.send(`{"op":"_ack","got":3}`)
	if err := c2.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"), time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	p.waitEqual(`second`, `CallError: the connection closed before the server answered "ask"`)
	c3 := srv.next(t)
	if !slices.Equal(c3.offered, []string{"wszero.json"}) {
		t.Errorf("after the server ended the session, the page offered %v, want [wszero.json]", c3.offered)
	}
	c3.send(`{"op":"_session","id":"page-2","key":"k3","resumed":false}`)
	p.waitEqual(`opens[2]`, map[string]any{"resumed": false})
	p.run(`send_message({op: "note", n: 3})`)
	c3.expect(`{"op":"note","n":3}`)

	// close() ends the session: 1000.
	p.run(`wszero.close()`)
	c3.closedWith(1000)
	p.noExceptions()
}

// testResumeAfterRateLimitedMessages: messages the server dropped for its
// rate limit were numbered by the page all the same. After a resume, the
// page sends again only what the server never took: nothing it handled is
// handled twice.
func testResumeAfterRateLimitedMessages(t *testing.T, browser context.Context) {
	r := newResumeServer(wszero.WithRateLimit(10, 5))
	p, proxy, id := pageThroughProxy(t, browser, r)
	p.run(`for (let n = 0; n < 8; n++) send_message({op: "note", n})`) // more than the burst of 5
	p.waitConsole(chromedp.ConsoleError, "wszero: slow down")
	<-time.After(500 * time.Millisecond) // the limiter allows 5 again
	p.run(`send_message({op: "note", n: 8})`)
	waitUntil(t, "the last note", func() bool { return slices.Contains(r.notesOf(id), 8) })
	before := r.notesOf(id)
	if len(before) == 9 {
		t.Fatalf("the server handled every note (%v): the test needs the rate limit to drop some", before)
	}

	proxy.Cut()
	p.waitFor(`opens.length === 2`)
	if detail := eval[map[string]any](p, `opens[1]`); detail["resumed"] != true {
		t.Fatalf(`after the cut, onState reported "open" with %v; want resumed true`, detail)
	}
	if got := eval[string](p, `call("whoami")`); got != id { // after whatever the page sent again
		t.Fatalf("after the cut the page is %s, want %s", got, id)
	}
	if after := r.notesOf(id); !slices.Equal(after, before) {
		t.Errorf("the server handled the notes %v before the cut, and %v after the resume: the page sent again what the server had taken (the server did not count the messages its rate limit dropped)", before, after)
	}
}
