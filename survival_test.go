package wszero

// The survival suite: hostile and broken clients through real sockets,
// bounded in count and time. Each test prints its figures with t.Logf
// (go test -v -run Survive shows them).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// ---- helpers for the survival tests ----

// usage is what a server holds: goroutines, and bytes of live heap.
type usage struct {
	goroutines int
	heap       uint64
}

func (u usage) String() string {
	return fmt.Sprintf("%d goroutines, %.1f MiB heap", u.goroutines, float64(u.heap)/(1<<20))
}

// measure collects garbage (twice, so that sync.Pools let go too) and
// returns the goroutines and the live heap.
func measure() usage {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return usage{runtime.NumGoroutine(), m.HeapAlloc}
}

// heapNow returns the heap in use without collecting garbage first: a peak.
func heapNow() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// settle waits, polling, until usage is back within the margins of base,
// and returns it; it fails the test after within.
func settle(t *testing.T, base usage, goroutines int, heap uint64, within time.Duration) usage {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		now := measure()
		if now.goroutines <= base.goroutines+goroutines && now.heap <= base.heap+heap {
			return now
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("not back to the baseline after %v: before %v, now %v (margins %d goroutines, %d bytes); goroutines:\n%s",
				within, base, now, goroutines, heap, buf[:n])
		}
		time.Sleep(100 * time.Millisecond) // polling, bounded by deadline
	}
}

// waitUntil polls cond until it holds, failing the test after within.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond) // polling, bounded by deadline
	}
}

// ticker broadcasts {"op": "tick", "i": 1, 2, …} every interval until
// stopped, and counts what Broadcast accepted.
type ticker struct {
	sent atomic.Int64 // the last i that Broadcast returned nil for
	stop chan struct{}
	done chan struct{}
}

func startTicker(s *Server, interval time.Duration) *ticker {
	tk := &ticker{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tk.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for i := int64(1); ; i++ {
			select {
			case <-tk.stop:
				return
			case <-t.C:
			}
			if s.Broadcast("tick", Params{"i": i}) == nil {
				tk.sent.Store(i)
			}
		}
	}()
	return tk
}

// halt stops the ticker and returns how many it broadcast.
func (tk *ticker) halt() int64 {
	close(tk.stop)
	<-tk.done
	return tk.sent.Load()
}

// bystander is a well-behaved client that reads everything on its own
// goroutine: ticks, which must come in order, and replies to its calls.
type bystander struct {
	t       *testing.T
	conn    *websocket.Conn
	ticks   atomic.Int64 // the last tick, all before it seen in order
	replies chan map[string]any
	done    chan error // the reading's end
	ref     int
}

func newBystander(t *testing.T, conn *websocket.Conn) *bystander {
	b := &bystander{t: t, conn: conn, replies: make(chan map[string]any, 16), done: make(chan error, 1)}
	go func() {
		b.done <- func() error {
			for {
				_, data, err := conn.ReadMessage()
				if err != nil {
					return err
				}
				var m map[string]any
				if err := json.Unmarshal(data, &m); err != nil {
					return err
				}
				switch m["op"] {
				case "tick":
					if i := int64(m["i"].(float64)); i != b.ticks.Load()+1 {
						return fmt.Errorf("tick %d after tick %d", i, b.ticks.Load())
					}
					b.ticks.Add(1)
				case "_ping":
				default:
					b.replies <- m
				}
			}
		}()
	}()
	return b
}

// call makes a call and returns how long the answer took.
func (b *bystander) call(msg map[string]any) (map[string]any, time.Duration) {
	b.t.Helper()
	b.ref++
	msg["_ref"] = b.ref
	data, _ := json.Marshal(msg)
	start := time.Now()
	require.NoError(b.t, b.conn.WriteMessage(websocket.TextMessage, data))
	select {
	case m := <-b.replies:
		require.Equal(b.t, float64(b.ref), m["_ref"], "the answer to call %d: %v", b.ref, m)
		return m, time.Since(start)
	case err := <-b.done:
		b.t.Fatalf("the bystander's connection ended: %v", err)
	case <-time.After(testTimeout):
		b.t.Fatalf("no answer to call %d within %v", b.ref, testTimeout)
	}
	return nil, 0
}

// close ends the bystander's connection and its reading.
func (b *bystander) close() {
	b.conn.Close()
	<-b.done
}

// percentiles returns the median and the largest of ds.
func percentiles(ds []time.Duration) (median, largest time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}

// smallDialer opens many connections cheaply.
var smallDialer = &websocket.Dialer{ReadBufferSize: 512, WriteBufferSize: 512, HandshakeTimeout: testTimeout}

// ---- the survival tests ----

// TestSurviveAbruptDisconnects opens 2,000 connections while broadcasts go
// out to everyone, drops them all without a close frame (half with a TCP
// reset), and checks that the server kept serving and let go of every
// goroutine and byte they held.
func TestSurviveAbruptDisconnects(t *testing.T) {
	const conns, dialers = 2000, 32
	s := New(quiet(), WithMaxConnectionsPerIP(0))
	var connected, disconnected atomic.Int64
	s.On("connect", func(c *Client) { connected.Add(1) })
	s.On("disconnect", func(c *Client) { disconnected.Add(1) })
	s.On("echo", func(c *Client, p Params) Params { return p })
	ts := startServer(t, s)

	// Warm up, then take the baseline: the server and one bystander.
	steady := newBystander(t, dialURL(t, smallDialer, wsURL(ts, "/ws"), nil).conn)
	defer steady.close()
	steady.call(map[string]any{"op": "echo"})
	before := measure()

	start := time.Now()
	tk := startTicker(s, 50*time.Millisecond)
	var opened []*websocket.Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, dialers)
	for w := 0; w < dialers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				conn, _, err := smallDialer.Dial(wsURL(ts, "/ws"), nil)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				opened = append(opened, conn)
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < conns; i++ {
		select {
		case next <- i:
		case err := <-errs:
			t.Fatalf("dialing: %v", err)
		}
	}
	close(next)
	wg.Wait()
	require.Len(t, opened, conns)
	waitUntil(t, 30*time.Second, "every connect handler", func() bool { return connected.Load() == conns+1 })
	// Broadcasts go out to all of them for a while.
	mark := tk.sent.Load()
	waitUntil(t, 30*time.Second, "20 broadcasts to everyone", func() bool { return tk.sent.Load() >= mark+20 })
	peak := heapNow()
	peakGoroutines := runtime.NumGoroutine()
	_, rtt := steady.call(map[string]any{"op": "echo", "with": conns})
	t.Logf("%d connections open after %v; a round trip took %v; %d goroutines, %.1f MiB heap",
		conns+1, time.Since(start).Round(time.Millisecond), rtt, peakGoroutines, float64(peak)/(1<<20))

	// Drop them all at once, none with a close frame.
	for i, conn := range opened {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_ = conn.UnderlyingConn().(*net.TCPConn).SetLinger(0) // a reset
			}
			conn.UnderlyingConn().Close()
		}()
	}
	wg.Wait()
	opened = nil
	waitUntil(t, 30*time.Second, "every disconnect handler", func() bool { return disconnected.Load() == conns })
	r, rtt := steady.call(map[string]any{"op": "echo", "after": "drop"})
	require.Equal(t, map[string]any{"after": "drop"}, r["result"], "the server keeps serving")
	mark = tk.sent.Load()
	waitUntil(t, testTimeout, "5 more broadcasts", func() bool { return tk.sent.Load() >= mark+5 })
	ticks := tk.halt()
	waitUntil(t, testTimeout, "the bystander to get every tick", func() bool { return steady.ticks.Load() == ticks })
	require.Len(t, s.Clients(), 1)

	// The runtime keeps a record of every goroutine it ever ran (a few
	// hundred bytes each, never freed) for reuse: that much may stay.
	after := settle(t, before, 10, uint64(peakGoroutines)*1<<10+1<<20, 30*time.Second)
	t.Logf("connections: %d opened and dropped (%d with a reset) in %v; broadcasts: %d, all delivered in order to the bystander; round trip after the drop: %v",
		conns, conns/2, time.Since(start).Round(time.Millisecond), ticks, rtt)
	t.Logf("goroutines: %d before, %d at the peak, %d after; heap: %.1f MiB before, %.1f MiB at the peak, %.1f MiB after",
		before.goroutines, peakGoroutines, after.goroutines, float64(before.heap)/(1<<20), float64(peak)/(1<<20), float64(after.heap)/(1<<20))
}

// TestSurviveFlood has one client send as fast as it can while another
// makes calls: the other's calls are all answered, in bounded time.
func TestSurviveFlood(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		cutOff  bool // the flooder is disconnected
		maxSent int
	}{
		{"default limits: the flooder is cut off", nil, true, 100000},
		{"no rate limit: the handler loop stays fair", []Option{WithRateLimit(0, 0)}, false, 100000},
		{"no rate limit, parallel handlers", []Option{WithRateLimit(0, 0), WithParallelHandlers()}, false, 100000},
	}
	const calls = 200
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := newLogSink()
			s := New(append([]Option{log.option()}, tt.opts...)...)
			var work atomic.Int64
			s.On("work", func(c *Client, p struct{ N int }) { work.Add(1) })
			s.On("echo", func(c *Client, p Params) Params { return p })
			disconnects := trackDisconnects(s)
			ts := startServer(t, s)
			other := newBystander(t, dial(t, ts).conn)
			defer other.close()
			flooder := dial(t, ts)

			stop := make(chan struct{})
			flooded := make(chan int, 1)
			go func() {
				n := 0
				defer func() { flooded <- n }()
				msg := []byte(`{"op":"work","n":1}`)
				for ; n < tt.maxSent; n++ {
					select {
					case <-stop:
						return
					default:
					}
					if flooder.conn.WriteMessage(websocket.TextMessage, msg) != nil {
						return // the server closed the connection
					}
				}
			}()
			waitUntil(t, testTimeout, "the flood to reach the handlers", func() bool { return work.Load() > 100 })
			var rtts []time.Duration
			for i := 0; i < calls; i++ {
				r, d := other.call(map[string]any{"op": "echo", "i": i})
				require.Equal(t, map[string]any{"i": float64(i)}, r["result"])
				rtts = append(rtts, d)
			}
			close(stop)
			sent := receive(t, flooded, "the flooder to stop")
			median, largest := percentiles(rtts)
			if tt.cutOff {
				require.Equal(t, websocket.ClosePolicyViolation, flooder.closeErr().Code)
				receive(t, disconnects, "the flooder's disconnect")
				log.waitFor(t, "it kept sending too fast")
			} else {
				require.Len(t, s.Clients(), 2, "no one was disconnected")
			}
			t.Logf("flooder sent %d messages, %d handled; the other's %d calls all answered: median %v, slowest %v",
				sent, work.Load(), calls, median, largest)
		})
	}
}

// TestSurviveNeverReadingClient broadcasts thousands of messages while one
// client reads nothing: it is cut off, the heap stays bounded, and a
// client that reads gets every message.
func TestSurviveNeverReadingClient(t *testing.T) {
	const broadcasts, size = 5000, 1 << 10
	log := newLogSink()
	s := New(log.option(), WithWriteTimeout(2*time.Second))
	connects := trackConnects(s)
	disconnects := trackDisconnects(s)
	ts := startSmallBufferServer(t, s)
	dial(t, ts) // never reads
	stuck := receive(t, connects, "connect")
	reader := newBystander(t, dial(t, ts).conn)
	defer reader.close()
	receive(t, connects, "connect")
	before := measure()

	pad := strings.Repeat("x", size)
	peak := before.heap
	for i := 1; i <= broadcasts; i++ {
		require.NoError(t, s.Broadcast("tick", Params{"i": i, "pad": pad}))
		if i%250 == 0 {
			peak = max(peak, heapNow())
			waitUntil(t, testTimeout, "the reader to keep up", func() bool { return reader.ticks.Load() >= int64(i-500) })
		}
	}
	waitUntil(t, testTimeout, "the reader to get every broadcast", func() bool { return reader.ticks.Load() == broadcasts })
	require.Equal(t, stuck, receive(t, disconnects, "the stuck client's disconnect"))
	text := log.waitFor(t, "send queue overflowed", "client="+stuck.ID())
	require.Len(t, s.Clients(), 1)
	after := measure()
	// What one client may hold queued is bounded by WithSendQueue (4 MiB);
	// the rest of the growth is transient garbage between collections.
	require.Less(t, peak-before.heap, uint64(32<<20), "the heap stayed bounded")
	queued := ""
	if i := strings.Index(text, "queued="); i >= 0 {
		queued = strings.Fields(text[i:])[0]
	}
	t.Logf("broadcasts: %d of %d bytes, all %d delivered in order to the reader; the never-reading client was cut off (%s); "+
		"heap: %.1f MiB before, %.1f MiB at the peak, %.1f MiB after",
		broadcasts, size, reader.ticks.Load(), queued, float64(before.heap)/(1<<20), float64(peak)/(1<<20), float64(after.heap)/(1<<20))
}

// malformed is one kind of bad frame and what the server must answer it
// with: an error message containing errText, or a close with closeCode.
type malformed struct {
	name      string
	kind      int    // a gorilla message type, or 0 for raw bytes written as they are
	data      []byte // the message, or the raw frame
	errText   string
	closeCode int
}

// rawFrame makes a client frame with the mask bit set and a zero key, so that
// data needs no masking. opcode includes the FIN and RSV bits.
func rawFrame(opcode byte, data []byte) []byte {
	f := []byte{opcode}
	switch n := len(data); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n < 1<<16:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(append(f, 0, 0, 0, 0), data...)
}

func malformedFrames() []malformed {
	nest := func(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }
	many := func(n int, item string) string { return strings.TrimSuffix(strings.Repeat(item+",", n), ",") }
	keys := make([]string, 3000)
	for i := range keys {
		keys[i] = fmt.Sprintf(`"k%d":%d`, i, i)
	}
	text := websocket.TextMessage
	return []malformed{
		{"binary frame", websocket.BinaryMessage, []byte(`{"op":"add","a":1,"b":2}`), "binary frame", 0},
		{"invalid UTF-8", text, []byte("{\"op\":\"add\",\"a\":1,\"b\":2,\"s\":\"\xff\xfe\"}"), "not valid UTF-8", 0},
		{"invalid UTF-8 op", text, []byte("{\"op\":\"\xc3\x28\"}"), "not valid UTF-8", 0},
		{"a NUL byte", text, []byte("{\"op\":\"add\x00\"}"), "not valid JSON", 0},
		{"an escaped NUL", text, []byte(`{"op":"add\u0000"}`), `no handler for "add\x00"`, 0},
		{"control characters in a key", text, []byte(`{"op":"add","a\u0007\u001b[2J":1,"b":2}`), `add got "a\a\x1b[2J"`, 0},
		{"deeply nested, past JSON's depth limit", text, []byte(`{"op":"add","a":` + nest(20000) + `}`), "not valid JSON", 0},
		{"deeply nested, for a number", text, []byte(`{"op":"add","a":` + nest(5000) + `,"b":1}`), `"a" should be`, 0},
		{"deeply nested _ref", text, []byte(`{"op":"add","_ref":` + nest(5000) + `}`), `"_ref" must be a number or a string`, 0},
		{"a huge string for a number", text, []byte(`{"op":"add","a":"` + strings.Repeat("9", 60000) + `","b":1}`), `"a" should be`, 0},
		{"a huge op", text, []byte(`{"op":"` + strings.Repeat("x", 60000) + `"}`), "no handler for", 0},
		{"a huge array", text, []byte(`[` + many(20000, "1") + `]`), "must be a JSON object", 0},
		{"a huge array for a number", text, []byte(`{"op":"add","a":[` + many(12000, `"x"`) + `],"b":1}`), `"a" should be`, 0},
		{"thousands of keys", text, []byte(`{"op":"add","a":1,"b":2,` + strings.Join(keys, ",") + `}`), `add got "k`, 0},
		{"a number too big", text, []byte(`{"op":"add","a":1e400,"b":1}`), `"a"`, 0},
		{"op a number", text, []byte(`{"op":5}`), `"op" must be a string`, 0},
		{"op null", text, []byte(`{"op":null}`), `"op" must be a string`, 0},
		{"op a list", text, []byte(`{"op":["add"]}`), `"op" must be a string`, 0},
		{"op an object", text, []byte(`{"op":{"add":1}}`), `"op" must be a string`, 0},
		{"op true", text, []byte(`{"op":true}`), `"op" must be a string`, 0},
		{"no op", text, []byte(`{"a":1}`), `no "op"`, 0},
		{"_ref an object", text, []byte(`{"op":"add","a":1,"b":2,"_ref":{"x":1}}`), `"_ref" must be a number or a string`, 0},
		{"_ref a list", text, []byte(`{"op":"add","a":1,"b":2,"_ref":[1]}`), `"_ref" must be a number or a string`, 0},
		{"_ref null", text, []byte(`{"op":"add","a":1,"b":2,"_ref":null}`), `"_ref" must be a number or a string`, 0},
		{"_ref true", text, []byte(`{"op":"add","a":1,"b":2,"_ref":true}`), `"_ref" must be a number or a string`, 0},
		{"a protocol op", text, []byte(`{"op":"_reply","result":1}`), "belong to the wszero protocol", 0},
		{"connect", text, []byte(`{"op":"connect"}`), "cannot send it", 0},
		{"trailing garbage", text, []byte(`{"op":"add","a":1,"b":2} {}`), "not valid JSON", 0},
		{"truncated", text, []byte(`{"op":"add","a":`), "not valid JSON", 0},
		{"empty", text, nil, "not valid JSON", 0},
		{"too big", text, []byte(`{"op":"add","pad":"` + strings.Repeat("x", DefaultMaxMessageSize) + `"}`), "", websocket.CloseMessageTooBig},
		// Frames that break the WebSocket protocol itself.
		{"an unmasked frame", 0, []byte{0x81, 2, '{', '}'}, "", websocket.CloseProtocolError},
		{"a reserved opcode", 0, rawFrame(0x83, []byte("{}")), "", websocket.CloseProtocolError},
		{"RSV bits", 0, rawFrame(0x80|0x40|0x1, []byte("{}")), "", websocket.CloseProtocolError},
		{"a continuation with no start", 0, rawFrame(0x80, []byte("{}")), "", websocket.CloseProtocolError},
		{"a text frame inside a fragmented one", 0, append(rawFrame(0x01, []byte("{")), rawFrame(0x81, []byte("}"))...), "", websocket.CloseProtocolError},
		{"a fragmented ping", 0, rawFrame(0x09, []byte("x")), "", websocket.CloseProtocolError},
		{"a ping too long", 0, rawFrame(0x89, make([]byte, 126)), "", websocket.CloseProtocolError},
		{"a close with a bad code", 0, rawFrame(0x88, []byte{0x03, 0xE7}), "", websocket.CloseProtocolError},
		{"a close with a bad reason", 0, rawFrame(0x88, []byte{0x03, 0xE8, 0xff}), "", websocket.CloseProtocolError},
		{"a length with the top bit set", 0, []byte{0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, "", websocket.CloseMessageTooBig},
		{"a length past the limit, then nothing", 0, []byte{0x81, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, "", websocket.CloseMessageTooBig},
	}
}

// TestSurviveMalformedFrames has hostile clients send every kind of bad
// frame at once, while a bystander makes calls: each bad frame gets an
// error or a close, none a panic, and the bystander notices nothing.
func TestSurviveMalformedFrames(t *testing.T) {
	const hostile = 16
	log := newLogSink()
	s := New(log.option())
	s.On("add", func(c *Client, p struct{ A, B int }) int { return p.A + p.B })
	ts := startServer(t, s)
	steady := newBystander(t, dial(t, ts).conn)
	defer steady.close()
	tk := startTicker(s, 5*time.Millisecond)
	cases := malformedFrames()

	var errorsSeen, closesSeen atomic.Int64
	failures := make(chan error, hostile*len(cases))
	var wg sync.WaitGroup
	for w := 0; w < hostile; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range cases {
				m := cases[(i+w)%len(cases)] // each client in its own order
				if err := sendMalformed(wsURL(ts, "/ws"), m, &errorsSeen, &closesSeen); err != nil {
					failures <- fmt.Errorf("%s: %w", m.name, err)
				}
			}
		}()
	}
	var rtts []time.Duration
	for i := 0; i < 100; i++ {
		r, d := steady.call(map[string]any{"op": "add", "a": i, "b": 1})
		require.Equal(t, float64(i+1), r["result"])
		rtts = append(rtts, d)
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}
	ticks := tk.halt()
	waitUntil(t, testTimeout, "the bystander to get every tick", func() bool { return steady.ticks.Load() == ticks })
	require.NotContains(t, log.String(), "panicked")
	median, largest := percentiles(rtts)
	t.Logf("malformed frames: %d kinds × %d clients = %d: %d answered with an error, %d with a close; "+
		"the bystander's 100 calls: median %v, slowest %v; %d broadcasts delivered in order",
		len(cases), hostile, len(cases)*hostile, errorsSeen.Load(), closesSeen.Load(), median, largest, ticks)
}

// sendMalformed sends m on a new connection and checks the server's answer.
func sendMalformed(url string, m malformed, errorsSeen, closesSeen *atomic.Int64) error {
	conn, _, err := smallDialer.Dial(url, nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	if m.kind == 0 {
		_, err = conn.UnderlyingConn().Write(m.data)
	} else {
		err = conn.WriteMessage(m.kind, m.data)
	}
	if err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
	for {
		_, data, err := conn.ReadMessage()
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce):
			if m.closeCode == 0 || ce.Code != m.closeCode {
				return fmt.Errorf("closed with %d %q, want %s", ce.Code, ce.Text, want(m))
			}
			closesSeen.Add(1)
			return nil
		case err != nil:
			return fmt.Errorf("%v, want %s", err, want(m))
		}
		var msg map[string]any
		if err := json.Unmarshal(data, &msg); err != nil {
			return fmt.Errorf("the answer %q is not JSON", data)
		}
		if msg["op"] == "_ping" || msg["op"] == "tick" {
			continue
		}
		text, _ := msg["msg"].(string)
		if msg["op"] != "error" || m.errText == "" || !strings.Contains(text, m.errText) {
			return fmt.Errorf("answered %.300s, want %s", data, want(m))
		}
		if _, ok := msg["_ref"]; ok {
			return fmt.Errorf("the error %.300s answers a call it could not know", data)
		}
		errorsSeen.Add(1)
		// The connection still works.
		if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"op":"add","a":1,"b":1,"_ref":"after"}`)); err != nil {
			return err
		}
		for {
			_, data, err = conn.ReadMessage()
			if err != nil {
				return fmt.Errorf("after the error, a call got no answer: %v", err)
			}
			if strings.Contains(string(data), `"_ref":"after"`) {
				if !strings.Contains(string(data), `"result":2`) {
					return fmt.Errorf("after the error, a call got %s", data)
				}
				return nil
			}
		}
	}
}

func want(m malformed) string {
	if m.closeCode != 0 {
		return fmt.Sprintf("a close with %d", m.closeCode)
	}
	return fmt.Sprintf("an error saying %q", m.errText)
}

// TestSurviveShutdownUnderLoad shuts the server down while clients make
// calls as fast as they can and broadcasts go out: every call the server
// took is answered, every broadcast accepted before Shutdown began is
// delivered, in order, and then each client is told goodbye.
func TestSurviveShutdownUnderLoad(t *testing.T) {
	for _, parallel := range []bool{false, true} {
		name := "handler loop"
		opts := []Option{quiet(), WithRateLimit(0, 0)}
		if parallel {
			name, opts = "parallel handlers", append(opts, WithParallelHandlers())
		}
		t.Run(name, func(t *testing.T) {
			const clients = 20
			s := New(opts...)
			var mu sync.Mutex
			handled := make([][]int, clients) // the calls each client's handler ran, in order
			s.On("work", func(c *Client, p struct{ C, N int }) int {
				mu.Lock()
				handled[p.C] = append(handled[p.C], p.N)
				mu.Unlock()
				return p.N
			})
			ts := startServer(t, s)

			type result struct {
				replies []int
				ticks   []int
				close   *websocket.CloseError
				err     error
			}
			results := make([]chan result, clients)
			sent := make([]atomic.Int64, clients)
			var writers sync.WaitGroup
			for i := 0; i < clients; i++ {
				conn := dial(t, ts).conn
				results[i] = make(chan result, 1)
				// At most window calls unanswered, as a real client would
				// have, so that no client falls behind and is cut off.
				const window = 128
				inFlight := make(chan struct{}, window)
				readDone := make(chan struct{})
				writers.Add(1)
				go func() { // calls, as fast as the window allows
					defer writers.Done()
					for n := 0; n < 1_000_000; n++ {
						select {
						case inFlight <- struct{}{}:
						case <-readDone:
							return
						}
						msg := fmt.Sprintf(`{"op":"work","c":%d,"n":%d,"_ref":%d}`, i, n, n)
						if conn.WriteMessage(websocket.TextMessage, []byte(msg)) != nil {
							return
						}
						sent[i].Store(int64(n + 1))
					}
				}()
				go func() { // everything that comes back
					var r result
					defer func() {
						close(readDone)
						results[i] <- r
					}()
					_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
					for {
						_, data, err := conn.ReadMessage()
						if err != nil {
							if !errors.As(err, &r.close) {
								r.err = err
							}
							return
						}
						var m struct {
							Op     string
							Ref    *int `json:"_ref"`
							I      int
							Result int
						}
						if err := json.Unmarshal(data, &m); err != nil {
							r.err = err
							return
						}
						switch m.Op {
						case "_reply":
							r.replies = append(r.replies, *m.Ref)
							<-inFlight
						case "tick":
							r.ticks = append(r.ticks, m.I)
						case "_ping":
						default:
							r.err = fmt.Errorf("unexpected %s", data)
							return
						}
					}
				}()
			}
			tk := startTicker(s, time.Millisecond)
			waitUntil(t, testTimeout, "the load to build up", func() bool {
				mu.Lock()
				defer mu.Unlock()
				for _, h := range handled {
					if len(h) < 200 {
						return false
					}
				}
				return tk.sent.Load() >= 50
			})
			accepted := tk.sent.Load() // every broadcast up to this one returned before Shutdown began
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			require.NoError(t, s.Shutdown(ctx))
			took := time.Since(start)
			tk.halt()
			writers.Wait()

			totalHandled, totalSent, fewestTicks := 0, int64(0), -1
			for i := 0; i < clients; i++ {
				r := receive(t, results[i], "a client's reading to end")
				require.NoError(t, r.err, "client %d", i)
				require.NotNil(t, r.close, "client %d was told goodbye", i)
				require.Equal(t, websocket.CloseGoingAway, r.close.Code)
				mu.Lock()
				h := slices.Clone(handled[i])
				mu.Unlock()
				require.Equal(t, len(h), len(r.replies), "client %d: every call that was handled was answered", i)
				require.Equal(t, h, r.replies, "client %d", i)
				for n, ref := range r.replies {
					require.Equal(t, n, ref, "client %d: the calls were handled in order, none skipped", i)
				}
				require.GreaterOrEqual(t, len(r.ticks), int(accepted), "client %d: every broadcast accepted before Shutdown arrived", i)
				require.True(t, sort.IntsAreSorted(r.ticks), "client %d: broadcasts in order", i)
				for n := 0; n < int(accepted); n++ {
					require.Equal(t, n+1, r.ticks[n], "client %d", i)
				}
				totalHandled += len(h)
				totalSent += sent[i].Load()
				if fewestTicks < 0 || len(r.ticks) < fewestTicks {
					fewestTicks = len(r.ticks)
				}
			}
			t.Logf("%d clients sent %d calls; %d were taken before Shutdown began and all %d answered; %d broadcasts accepted before it, "+
				"each client got at least %d; Shutdown took %v", clients, totalSent, totalHandled, totalHandled, accepted, fewestTicks, took.Round(time.Millisecond))
		})
	}
}

// TestSurviveFrameFlood: a peer that sends endless empty continuation
// frames, with a ping now and then, never finishing its message, is cut
// off once it has sent far more bytes than a message holds, with 1008 and
// the reason; a bystander is served meanwhile.
func TestSurviveFrameFlood(t *testing.T) {
	s := New(quiet())
	s.On("add", func(c *Client, p struct{ A, B int }) int { return p.A + p.B })
	ts := startServer(t, s)
	steady := newBystander(t, dial(t, ts).conn)
	defer steady.close()
	p := dial(t, ts)

	// Masked frames, as a client must send them: a text frame begun and
	// not finished, then empty continuation frames, and a ping every 100.
	start := []byte{0x01, 0x80, 0, 0, 0, 0}
	cont := []byte{0x00, 0x80, 0, 0, 0, 0}
	ping := []byte{0x89, 0x80, 0, 0, 0, 0}
	var chunk []byte
	for i := 0; i < 1000; i++ {
		chunk = append(chunk, cont...)
		if i%100 == 99 {
			chunk = append(chunk, ping...)
		}
	}
	const maxChunks = 2000 // 2 million frames, 12 MB: the loop's bound
	raw := p.conn.UnderlyingConn()
	began := time.Now()
	_, err := raw.Write(start)
	require.NoError(t, err)
	sent := 0
	closed := make(chan *websocket.CloseError, 1)
	go func() { closed <- p.closeErr() }()
	var ce *websocket.CloseError
writing:
	for sent < maxChunks {
		select {
		case ce = <-closed:
			break writing
		default:
		}
		require.NoError(t, raw.SetWriteDeadline(time.Now().Add(testTimeout)))
		if _, err := raw.Write(chunk); err != nil {
			break // the server has closed the connection
		}
		sent++
	}
	if ce == nil {
		ce = receive(t, closed, "the server to close the flooding connection")
	}
	took := time.Since(began)
	require.Equal(t, websocket.ClosePolicyViolation, ce.Code)
	require.Equal(t, frameFloodReason, ce.Text)
	require.Less(t, sent, maxChunks, "the peer was cut off before the loop's bound")

	r, d := steady.call(map[string]any{"op": "add", "a": 1, "b": 2})
	require.Equal(t, 3.0, r["result"])
	t.Logf("frame flood: cut off with 1008 in %v; the server reads at most %d bytes (about %d empty frames) a message or a second; "+
		"the test had written %d frames into the socket by then, most of them still in the kernel's buffers; the bystander's call then took %v",
		took.Round(time.Millisecond), s.frameBudget(), s.frameBudget()/6, sent*1010, d)
}

// TestSurviveABusyLoop: one client keeps the handler loop saturated with
// calls to a slow handler (within the rate limit); twenty others, each
// making a call four times a second, stay connected and are answered
// within their fair share of the loop, and nobody, the busy client
// included, is dropped as silent or too fast for the server's own delay.
func TestSurviveABusyLoop(t *testing.T) {
	const innocents, rounds = 20, 12
	s := New(quiet(), WithKeepalive(200*time.Millisecond, 600*time.Millisecond))
	s.On("slow", func(c *Client) int {
		time.Sleep(50 * time.Millisecond) // the load: a handler that takes its time
		return 1
	})
	s.On("ping", func(c *Client) string { return "pong" })
	ts := startServer(t, s)
	disconnects := trackDisconnects(s)

	busy := dial(t, ts)
	stopBusy := make(chan struct{})
	var busySent, busyAnswered atomic.Int64
	busyEnded := make(chan error, 1)
	go func() { // its replies, until the test ends
		for {
			_, _, err := busy.conn.ReadMessage()
			if err != nil {
				busyEnded <- err
				return
			}
			busyAnswered.Add(1)
		}
	}()
	go func() { // 150 calls a second, within the rate limit, for as long as the test runs
		tick := time.NewTicker(time.Second / 150)
		defer tick.Stop()
		for i := 1; i <= 3000; i++ {
			select {
			case <-stopBusy:
				return
			case <-tick.C:
			}
			if busy.conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"op":"slow","_ref":%d}`, i)) != nil {
				return
			}
			busySent.Add(1)
		}
	}()

	latencies := make(chan time.Duration, innocents*rounds)
	failures := make(chan error, innocents)
	var wg sync.WaitGroup
	for i := 0; i < innocents; i++ {
		conn, _, err := websocket.DefaultDialer.Dial(wsURL(ts, "/ws"), nil)
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			pace := time.NewTicker(250 * time.Millisecond) // its own pace: four calls a second
			defer pace.Stop()
			for r := 1; r <= rounds; r++ {
				began := time.Now()
				if err := conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"op":"ping","_ref":%d}`, r)); err != nil {
					failures <- err
					return
				}
				_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
				for {
					var m struct {
						Op  string
						Ref int `json:"_ref"`
					}
					if err := conn.ReadJSON(&m); err != nil {
						failures <- fmt.Errorf("an innocent client lost its call %d: %w", r, err)
						return
					}
					if m.Op == "_reply" && m.Ref == r {
						break
					}
				}
				latencies <- time.Since(began)
				<-pace.C
			}
		}()
	}
	wg.Wait()
	close(stopBusy)
	close(failures)
	for err := range failures {
		t.Error(err)
	}
	select {
	case c := <-disconnects:
		t.Errorf("%s was disconnected while the loop was busy", c)
	case err := <-busyEnded:
		t.Errorf("the busy client's connection ended: %v", err)
	default:
	}
	close(latencies)
	var ds []time.Duration
	for d := range latencies {
		ds = append(ds, d)
	}
	require.Len(t, ds, innocents*rounds, "every innocent call answered")
	median, largest := percentiles(ds)
	t.Logf("busy loop: the busy client sent %d calls to a 50 ms handler, %d answered so far, and stayed connected; "+
		"%d innocent clients × %d calls all answered: median %v, slowest %v (a fair share is %d of the busy client's handlers, %v)",
		busySent.Load(), busyAnswered.Load(), innocents, rounds, median.Round(time.Millisecond), largest.Round(time.Millisecond),
		clientLoopTasks, clientLoopTasks*50*time.Millisecond)
}

// TestSurviveHugeHeaders: many connections that each send a 1 MiB request
// header hold a bounded amount of memory, because the header is cut off at
// 64 KiB, and the memory comes back once they are gone.
func TestSurviveHugeHeaders(t *testing.T) {
	const conns = 300
	s := New(quiet())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	defer func() {
		require.NoError(t, s.Shutdown(context.Background()))
		<-served
	}()
	before := measure()
	header := []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\n\r\n")
	var peak uint64
	var answered, cut atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(testTimeout))
			if _, err := conn.Write(header); err != nil {
				cut.Add(1) // the server stopped reading and closed it
				return
			}
			if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusRequestHeaderFieldsTooLarge {
					answered.Add(1)
				}
			} else {
				cut.Add(1)
			}
		}()
		if h := heapNow(); h > peak {
			peak = h
		}
	}
	wg.Wait()
	after := settle(t, before, 5, 8<<20, testTimeout)
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
	require.Less(t, mib(peak)-mib(before.heap), float64(conns)*0.25, "more than a quarter MiB held per connection")
	t.Logf("huge headers: %d connections sent 1 MiB headers: %d answered 431, %d cut off; heap %.1f MiB before, %.1f MiB at the peak, %.1f MiB after",
		conns, answered.Load(), cut.Load(), mib(before.heap), mib(peak), mib(after.heap))
}
