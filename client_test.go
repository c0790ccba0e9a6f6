package wszero

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// ---- the send path ----

func TestManySendsArriveInOrder(t *testing.T) {
	// A handler may send a whole queue's worth at once: the writer merges
	// them into few writes, and the peer gets every one, in order.
	const n = DefaultQueueMessages
	s, ts := newTestServer(t)
	s.On("burst", func(c *Client, p struct{ N int }) error {
		for i := 0; i < p.N; i++ {
			if err := c.Send("n", Params{"i": i}); err != nil {
				return err
			}
		}
		return nil
	})
	p := dial(t, ts)
	for round := 0; round < 3; round++ {
		p.send(map[string]any{"op": "burst", "n": n})
		p.readNumbered("n", 0, n-1)
	}
}

// fakeConn records what batchConn does to the connection under it.
type fakeConn struct {
	net.Conn
	mu        sync.Mutex
	writes    [][]byte
	deadlines []time.Time
}

func (f *fakeConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (f *fakeConn) SetWriteDeadline(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deadlines = append(f.deadlines, t)
	return nil
}

func TestBatchConn(t *testing.T) {
	f := &fakeConn{}
	b := &batchConn{Conn: f, timeout: time.Minute}

	// Outside a batch, writes go straight through, with their own deadline.
	before := time.Now()
	_, err := b.Write([]byte("handshake"))
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("handshake")}, f.writes)
	require.WithinDuration(t, before.Add(time.Minute), f.deadlines[0], time.Second)

	// gorilla's deadlines are ignored: a reader's pong must not change the
	// deadline of the writer's flush.
	require.NoError(t, b.SetWriteDeadline(time.Now().Add(time.Millisecond)))
	require.Len(t, f.deadlines, 1)

	// In a batch, writes are gathered and flushed as one, by the batch's deadline.
	deadline := time.Now().Add(5 * time.Second)
	b.begin(deadline)
	for _, w := range []string{"one", "two", "three"} {
		n, err := b.Write([]byte(w))
		require.NoError(t, err)
		require.Equal(t, len(w), n)
	}
	require.Len(t, f.writes, 1, "nothing is written before the flush")
	require.NoError(t, b.flush())
	require.Equal(t, []byte("onetwothree"), f.writes[1])
	require.Equal(t, deadline, f.deadlines[1])

	// An empty batch writes nothing.
	b.begin(deadline)
	require.NoError(t, b.flush())
	require.Len(t, f.writes, 2)

	// Writes from another goroutine during a batch join it whole.
	b.begin(deadline)
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = b.Write([]byte(fmt.Sprintf("<%d>", i)))
		}()
	}
	wg.Wait()
	require.NoError(t, b.flush())
	require.Len(t, f.writes, 3)
	for i := 0; i < 10; i++ {
		require.Contains(t, string(f.writes[2]), fmt.Sprintf("<%d>", i))
	}

	// Moving a deadline costs a timer update: a later deadline within a
	// sixteenth of the timeout keeps the one set, an earlier one replaces it.
	set := len(f.deadlines)
	b.begin(deadline.Add(b.timeout / 32))
	_, _ = b.Write([]byte("x"))
	require.NoError(t, b.flush())
	require.Len(t, f.deadlines, set, "a deadline barely later is not set")
	b.begin(deadline.Add(-time.Second))
	_, _ = b.Write([]byte("x"))
	require.NoError(t, b.flush())
	require.Equal(t, deadline.Add(-time.Second), f.deadlines[set], "an earlier deadline is set")
	b.begin(deadline.Add(b.timeout / 8))
	_, _ = b.Write([]byte("x"))
	require.NoError(t, b.flush())
	require.Equal(t, deadline.Add(b.timeout/8), f.deadlines[set+1], "a deadline later by more than a sixteenth is set")
}

func TestPingsDuringAStream(t *testing.T) {
	// The peer pings while the server streams: the pongs join the stream,
	// and every message still arrives whole and in order.
	const n = 1000
	s, ts := newTestServer(t)
	started := make(chan struct{})
	s.On("stream", func(c *Client) {
		close(started)
		for i := 0; i < n; i++ {
			_ = c.Send("n", Params{"i": i})
		}
	})
	s.On("ping", func(c *Client) string { return "pong" })
	p := dial(t, ts)
	pongs := make(chan string, 100)
	p.conn.SetPongHandler(func(data string) error { pongs <- data; return nil })
	p.send(`{"op":"stream"}`)
	receive(t, started, "the stream to start")
	for i := 0; i < 20; i++ {
		require.NoError(t, p.conn.WriteControl(websocket.PingMessage, []byte(fmt.Sprint(i)), time.Now().Add(testTimeout)))
	}
	p.readNumbered("n", 0, n-1)
	// The server's reader reads the call after the pings: the reply comes
	// after the pongs.
	require.Equal(t, "pong", p.call(1, map[string]any{"op": "ping"})["result"])
	for i := 0; i < 20; i++ {
		require.Equal(t, fmt.Sprint(i), receive(t, pongs, "a pong"))
	}
}

func TestReaderWritesDuringABatch(t *testing.T) {
	// gorilla's reader writes a close frame itself when the peer breaks the
	// protocol, perhaps while the writer is in the middle of a batch. The
	// race detector watches; the peer must see whole frames in order, then
	// the close frame.
	s, ts := newTestServer(t, WithSendQueue(1<<20, 1<<30))
	disconnects := trackDisconnects(s)
	s.On("stream", func(c *Client) {
		for i := 0; c.Send("n", Params{"i": i, "pad": strings.Repeat("x", i%200)}) == nil; i++ {
			if i%100 == 99 {
				runtime.Gosched() // let the writer catch up, so that it keeps writing
			}
			if i == 100000 {
				return
			}
		}
	})
	for round := 0; round < 10; round++ {
		p := dial(t, ts)
		p.send(`{"op":"stream"}`)
		p.readNumbered("n", 0, 9) // the writer is busy
		// A text frame with a reserved bit set is a protocol error: gorilla
		// answers it with close code 1002 from the reader goroutine.
		raw := []byte{0x80 | 0x40 | 0x1, 0x80 | 1, 0, 0, 0, 0, 'x'}
		_, err := p.conn.UnderlyingConn().Write(raw)
		require.NoError(t, err)

		next := 10
		for {
			// Each frame within testTimeout of the one before: under -race,
			// on a loaded machine, the whole stream can take longer.
			require.NoError(t, p.conn.SetReadDeadline(time.Now().Add(testTimeout)))
			_, data, err := p.conn.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				require.True(t, errors.As(err, &ce), "the stream ends with a close frame, got %v", err)
				require.Equal(t, websocket.CloseProtocolError, ce.Code)
				break
			}
			require.Contains(t, string(data), fmt.Sprintf(`"i":%d,`, next), "messages are whole and in order")
			next++
		}
		receive(t, disconnects, "the disconnect handler")
	}
}

func TestBroadcastIsPreparedOnce(t *testing.T) {
	s, ts := newTestServer(t)
	connects := trackConnects(s)
	var peers []*peer
	var clients []*Client
	for i := 0; i < 3; i++ {
		p, c := dialClient(t, ts, connects)
		peers, clients = append(peers, p), append(clients, c)
	}
	// Hold the writers, so that the queued frames can be looked at.
	for _, c := range clients {
		c.mu.Lock()
		c.link.send.writing = true
		c.mu.Unlock()
	}
	require.NoError(t, s.Broadcast("news", Params{"n": 1}))
	var prepared []*preparedFrame
	for _, c := range clients {
		c.mu.Lock()
		require.Len(t, c.link.send.frames, 1)
		require.NotNil(t, c.link.send.frames[0].prepared)
		prepared = append(prepared, c.link.send.frames[0].prepared)
		c.link.send.writing = false
		c.link.startWriterLocked()
		c.mu.Unlock()
	}
	require.Same(t, prepared[0], prepared[1])
	require.Same(t, prepared[0], prepared[2])
	for _, p := range peers {
		require.Equal(t, map[string]any{"op": "news", "n": 1.0}, p.read())
	}
}

// ---- slow clients ----

// floodSlowPeer broadcasts numbered messages, which fast reads one by one,
// until the log says the server dropped a client for being slow. It
// returns how many were broadcast.
func floodSlowPeer(t *testing.T, s *Server, fast *peer, log *logSink, size int) int {
	t.Helper()
	pad := strings.Repeat("x", size)
	for i := 0; i < 5000; i++ {
		require.NoError(t, s.Broadcast("n", Params{"i": i, "pad": pad}))
		fast.readNumbered("n", i, i)
		if log.has("send queue overflowed") {
			return i + 1
		}
	}
	t.Fatal("the slow peer was never dropped")
	return 0
}

func TestSlowClientIsDisconnected(t *testing.T) {
	tests := []struct {
		name      string
		messages  int
		bytes     int
		msgSize   int
		wantLimit string
	}{
		{"message limit", 8, 1 << 20, 2 << 10, "the limit is 8 messages or 1048576 bytes"},
		{"byte limit", 1000, 20000, 4 << 10, "the limit is 1000 messages or 20000 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name+", reading afterwards", func(t *testing.T) {
			// The slow peer reads nothing until the server has given up on
			// it; then it finds what was written, in order, and the reason.
			log := newLogSink()
			s := New(log.option(), WithSendQueue(tt.messages, tt.bytes), WithWriteTimeout(3*time.Second))
			connects := trackConnects(s)
			disconnects := trackDisconnects(s)
			ts := startSmallBufferServer(t, s)
			slow := dial(t, ts)
			slowClient := receive(t, connects, "connect")
			fast := dial(t, ts)
			receive(t, connects, "connect")

			sent := floodSlowPeer(t, s, fast, log, tt.msgSize)
			require.Contains(t, log.String(), "client="+slowClient.ID())
			require.ErrorIs(t, slowClient.Send("more", nil), ErrClosed)

			got := 0
			require.NoError(t, slow.conn.SetReadDeadline(time.Now().Add(testTimeout)))
			var ce *websocket.CloseError
			for {
				_, data, err := slow.conn.ReadMessage()
				if err != nil {
					require.True(t, errors.As(err, &ce), "expected a close frame, got %v", err)
					break
				}
				require.Contains(t, string(data), fmt.Sprintf(`"i":%d,`, got))
				got++
			}
			require.Equal(t, websocket.ClosePolicyViolation, ce.Code)
			require.True(t, strings.HasPrefix(ce.Text, "too slow: "), ce.Text)
			require.Contains(t, ce.Text, tt.wantLimit)
			m := regexp.MustCompile(`queued=(\d+)`).FindStringSubmatch(log.String())
			require.NotNil(t, m, "the log says how many were waiting")
			dropped, _ := strconv.Atoi(m[1])
			require.Positive(t, dropped)
			require.Equal(t, sent-1-dropped, got, "what was being written arrives; the backlog is dropped")
			require.Equal(t, slowClient, receive(t, disconnects, "the disconnect handler"))

			// Nobody else noticed.
			for i := sent; i < sent+50; i++ {
				require.NoError(t, s.Broadcast("n", Params{"i": i}))
				fast.readNumbered("n", i, i)
			}
			require.Len(t, s.Clients(), 1)
		})
	}
	t.Run("never reading", func(t *testing.T) {
		log := newLogSink()
		s := New(log.option(), WithSendQueue(8, 1<<20), WithWriteTimeout(500*time.Millisecond))
		connects := trackConnects(s)
		disconnects := trackDisconnects(s)
		ts := startSmallBufferServer(t, s)
		dial(t, ts)
		slowClient := receive(t, connects, "connect")
		fast := dial(t, ts)
		receive(t, connects, "connect")

		sent := floodSlowPeer(t, s, fast, log, 2<<10)
		require.Equal(t, slowClient, receive(t, disconnects, "the disconnect handler"),
			"the stuck write times out and the client leaves")
		for i := sent; i < sent+50; i++ {
			require.NoError(t, s.Broadcast("n", Params{"i": i}))
			fast.readNumbered("n", i, i)
		}
		require.Len(t, s.Clients(), 1)
	})
}

// ---- limits ----

func TestMessageSizeLimit(t *testing.T) {
	tests := []struct {
		name   string
		opts   []Option
		size   int // bytes of padding in the message
		closed bool
		limit  int
	}{
		{"default: 63 KiB is handled", nil, 63 << 10, false, DefaultMaxMessageSize},
		{"default: 65 KiB closes", nil, 65 << 10, true, DefaultMaxMessageSize},
		{"custom: under the limit", []Option{WithMaxMessageSize(100)}, 50, false, 100},
		{"custom: over the limit", []Option{WithMaxMessageSize(100)}, 101, true, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := newTestServer(t, tt.opts...)
			disconnects := trackDisconnects(s)
			s.On("size", func(c *Client, p struct{ Pad string }) int { return len(p.Pad) })
			p := dial(t, ts)
			msg := `{"op":"size","pad":"` + strings.Repeat("a", tt.size) + `","_ref":1}`
			p.send(msg)
			if !tt.closed {
				require.Equal(t, float64(tt.size), p.read()["result"])
				return
			}
			ce := p.closeErr()
			require.Equal(t, websocket.CloseMessageTooBig, ce.Code)
			require.Equal(t, fmt.Sprintf("message too big: the limit is %d bytes", tt.limit), ce.Text)
			receive(t, disconnects, "the disconnect handler")
		})
	}
	t.Run("the limit must be positive", func(t *testing.T) {
		require.Panics(t, func() { WithMaxMessageSize(0) })
	})
}

func TestRateLimit(t *testing.T) {
	// A rate of 2 a second with a burst of 3: a quick burst of calls gets
	// three answers; later ones are dropped, with one "slow down" error.
	t.Run("dropped messages, and a flood closes", func(t *testing.T) {
		s, ts := newTestServer(t, WithRateLimit(2, 3))
		disconnects := trackDisconnects(s)
		s.On("echo", func(c *Client, p struct{ N int }) int { return p.N })
		flooder, other := dial(t, ts), dial(t, ts)
		var results []float64
		for i := 1; i <= 3; i++ { // the burst
			results = append(results, flooder.call(i, map[string]any{"op": "echo", "n": i})["result"].(float64))
		}
		for i := 4; i <= 20; i++ {
			// The server may close while the flood is still being written.
			_ = flooder.conn.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"op":"echo","n":%d,"_ref":%d}`, i, i)))
		}
		slowDowns := 0
		require.NoError(t, flooder.conn.SetReadDeadline(time.Now().Add(testTimeout)))
		var ce *websocket.CloseError
		for ce == nil {
			_, data, err := flooder.conn.ReadMessage()
			if err != nil {
				require.True(t, errors.As(err, &ce), "expected a close frame, got %v", err)
				break
			}
			m := map[string]any{}
			require.NoError(t, json.Unmarshal(data, &m))
			switch m["op"] {
			case "_reply":
				results = append(results, m["result"].(float64))
			case "error":
				require.Contains(t, m["msg"], "slow down: you are sending more than 2 messages a second")
				require.NotContains(t, m, "_ref")
				slowDowns++
			}
		}
		require.Equal(t, []float64{1, 2, 3}, results, "the burst is answered; the rest is dropped")
		require.Equal(t, 1, slowDowns)
		require.Equal(t, websocket.ClosePolicyViolation, ce.Code)
		require.Equal(t, "too many messages: the limit is 2 a second", ce.Text)
		receive(t, disconnects, "the disconnect handler")
		require.Equal(t, 7.0, other.call(7, map[string]any{"op": "echo", "n": 7})["result"], "others are not affected")
	})
	t.Run("dropping is not yet flooding", func(t *testing.T) {
		s, ts := newTestServer(t, WithRateLimit(2, 3))
		connects := trackConnects(s)
		s.On("echo", func(c *Client, p struct{ N int }) int { return p.N })
		p, c := dialClient(t, ts, connects)
		for i := 1; i <= 5; i++ { // 3 answered, 2 dropped: not more than the burst
			p.send(fmt.Sprintf(`{"op":"echo","n":%d,"_ref":%d}`, i, i))
		}
		// A ping after them: its pong shows the reader has dealt with all five.
		pong := make(chan struct{}, 1)
		p.conn.SetPongHandler(func(string) error { pong <- struct{}{}; return nil })
		require.NoError(t, p.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(testTimeout)))
		msgs, _ := p.readInto()
		var got []map[string]any
	wait:
		for {
			select {
			case m, ok := <-msgs:
				require.True(t, ok, "the connection stays open")
				got = append(got, m)
			case <-pong:
				break wait
			case <-time.After(testTimeout):
				t.Fatal("no pong")
			}
		}
		// Whatever the handlers of the five sent was queued before this.
		marker := make(chan struct{})
		s.After(0, func() { _ = c.Send("marker", nil); close(marker) })
		receive(t, marker, "the marker")
		for m := range msgs {
			got = append(got, m)
			if m["op"] == "marker" {
				break
			}
		}
		var results []any
		errs := 0
		for _, m := range got {
			switch m["op"] {
			case "_reply":
				results = append(results, m["result"])
			case "error":
				errs++
			}
		}
		require.Equal(t, []any{1.0, 2.0, 3.0}, results)
		require.Equal(t, 1, errs)
		require.Len(t, s.Clients(), 1)
		require.NoError(t, p.conn.Close())
		for range msgs { // let the reading goroutine end
		}
	})
	t.Run("off", func(t *testing.T) {
		s, ts := newTestServer(t, WithRateLimit(0, 0))
		s.On("echo", func(c *Client, p struct{ N int }) int { return p.N })
		p := dial(t, ts)
		for i := 1; i <= 1000; i++ {
			p.send(fmt.Sprintf(`{"op":"echo","n":%d,"_ref":%d}`, i, i))
		}
		for i := 1; i <= 1000; i++ {
			require.Equal(t, float64(i), p.read()["result"])
		}
	})
	t.Run("bad settings panic", func(t *testing.T) {
		require.Panics(t, func() { WithRateLimit(-1, 1) })
		require.Panics(t, func() { WithRateLimit(10, 0) })
	})
}

func TestBadFramesGetErrors(t *testing.T) {
	tests := []struct {
		name   string
		binary bool
		frame  string
		want   string
	}{
		{"invalid JSON", false, `{"op": "echo"`, "not valid JSON"},
		{"not JSON at all", false, `hello`, "not valid JSON"},
		{"a list", false, `[1, 2]`, "must be a JSON object"},
		{"a string", false, `"echo"`, "must be a JSON object"},
		{"a number", false, `42`, "must be a JSON object"},
		{"null", false, `null`, `"op"`},
		{"op not a string", false, `{"op": 5}`, `"op" must be a string`},
		{"no op", false, `{"text": "hi"}`, `no "op"`},
		{"unknown op", false, `{"op": "nope"}`, `no handler for "nope"`},
		{"connect", false, `{"op": "connect"}`, "cannot send it"},
		{"a protocol op", false, `{"op": "_reply"}`, `belong to the wszero protocol`},
		{"binary frame", true, `{"op": "echo"}`, "binary frame"},
	}
	s, ts := newTestServer(t)
	s.On("echo", func(c *Client, p Params) Params { return p })
	p := dial(t, ts)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.t = t
			kind := websocket.TextMessage
			if tt.binary {
				kind = websocket.BinaryMessage
			}
			require.NoError(t, p.conn.WriteMessage(kind, []byte(tt.frame)))
			m := p.read()
			require.Equal(t, "error", m["op"])
			require.Contains(t, m["msg"], tt.want)
			r := p.call(i, map[string]any{"op": "echo", "k": i})
			require.Equal(t, map[string]any{"k": float64(i)}, r["result"], "the connection is still usable")
		})
	}
}

// ---- keepalive and control frames ----

func TestKeepalive(t *testing.T) {
	const interval, timeout = 40 * time.Millisecond, 400 * time.Millisecond
	log := newLogSink()
	s := New(log.option(), WithKeepalive(interval, timeout))
	s.On("ping", func(c *Client) string { return "pong" })
	connects := trackConnects(s)
	disconnects := trackDisconnects(s)
	ts := startServer(t, s)

	// A peer that answers pings but sends nothing else stays connected.
	alive, aliveClient := dialClient(t, ts, connects)
	pings := make(chan time.Time, 1000)
	alive.conn.SetPingHandler(func(data string) error {
		pings <- time.Now()
		return alive.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(testTimeout))
	})
	readErr := make(chan error, 1)
	go func() {
		for { // answers pings while it waits; the _ping messages are not what it waits for
			_, data, err := alive.conn.ReadMessage()
			if err != nil || !strings.HasPrefix(string(data), `{"op":"_ping"`) {
				readErr <- err
				return
			}
		}
	}()

	// A peer that reads nothing never answers, and is dropped.
	silent, silentClient := dialClient(t, ts, connects)
	silent.conn.SetPingHandler(func(string) error { return nil })
	require.Equal(t, silentClient, receive(t, disconnects, "the silent client to be dropped"))
	log.waitFor(t, "stopped answering", "client="+silentClient.ID())

	// Keep the live peer going for well over the timeout.
	first := receive(t, pings, "a ping")
	for last := first; last.Sub(first) < timeout+3*interval; {
		select {
		case last = <-pings:
		case err := <-readErr:
			t.Fatalf("the answering client was dropped: %v", err)
		case <-time.After(testTimeout):
			t.Fatal("the pings stopped")
		}
	}
	require.Equal(t, ids([]*Client{aliveClient}), ids(s.Clients()), "pongs keep a client connected")
	select {
	case <-disconnects:
		t.Fatal("the answering client was dropped")
	default:
	}
	require.NoError(t, aliveClient.Send("still-there", nil))
	require.NoError(t, receive(t, readErr, "the message"))
	require.Equal(t, "pong", alive.call(1, map[string]any{"op": "ping"})["result"])

	t.Run("off", func(t *testing.T) {
		s, ts := newTestServer(t, WithKeepalive(0, 0))
		s.On("ping", func(c *Client) string { return "pong" })
		p := dial(t, ts)
		p.conn.SetPingHandler(func(string) error { t.Error("a ping came with keepalive off"); return nil })
		require.Equal(t, "pong", p.call(1, map[string]any{"op": "ping"})["result"])
	})
	t.Run("bad settings panic", func(t *testing.T) {
		require.Panics(t, func() { WithKeepalive(time.Second, time.Second) })
		require.Panics(t, func() { WithKeepalive(-1, 0) })
	})
}

func TestKeepalivePingsEveryClient(t *testing.T) {
	// One timer pings the clients slot by slot: each client, whatever its
	// slot, is pinged, and again an interval later.
	s, ts := newTestServer(t, WithKeepalive(40*time.Millisecond, 2*time.Second))
	s.On("ping", func(c *Client) string { return "pong" })
	const n = 2*keepaliveSlots + 1
	pinged := make(chan int, 4*n)
	for i := range n {
		p := dial(t, ts)
		p.conn.SetPingHandler(func(data string) error {
			pinged <- i
			return p.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(testTimeout))
		})
		go func() {
			for {
				if _, _, err := p.conn.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	times := make([]int, n)
	deadline := time.After(testTimeout)
	for waiting := n; waiting > 0; {
		select {
		case i := <-pinged:
			if times[i]++; times[i] == 2 {
				waiting--
			}
		case <-deadline:
			t.Fatalf("pings per client: %v; every client should have had two", times)
		}
	}
}

func TestAppPing(t *testing.T) {
	s, ts := newTestServer(t, WithKeepalive(50*time.Millisecond, time.Second))
	s.On("ping", func(c *Client) string { return "pong" })
	p := dial(t, ts)
	// The browser cannot see WebSocket pings, so a _ping message tells the
	// page the connection is alive, and how often to expect one.
	require.Equal(t, map[string]any{"op": "_ping", "every": 50.0}, p.expect("_ping"))
	// The page's _pong answer is taken quietly: no error comes back.
	p.send(`{"op":"_pong"}`)
	require.Equal(t, map[string]any{"op": "_reply", "_ref": 1.0, "result": "pong"}, p.call(1, map[string]any{"op": "ping"}))
}

func TestControlFrames(t *testing.T) {
	s, ts := newTestServer(t)
	disconnects := trackDisconnects(s)
	s.On("ping", func(c *Client) string { return "pong" })
	p := dial(t, ts)

	t.Run("a ping is answered with its data", func(t *testing.T) {
		pong := make(chan string, 1)
		p.conn.SetPongHandler(func(data string) error { pong <- data; return nil })
		require.NoError(t, p.conn.WriteControl(websocket.PingMessage, []byte("hello"), time.Now().Add(testTimeout)))
		// The reply to a later call comes after the pong.
		require.Equal(t, "pong", p.call(1, map[string]any{"op": "ping"})["result"])
		require.Equal(t, "hello", receive(t, pong, "the pong"))
	})
	t.Run("a close is echoed with its code", func(t *testing.T) {
		require.NoError(t, p.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "done")))
		require.Equal(t, 4000, p.closeErr().Code)
		receive(t, disconnects, "the disconnect handler")
	})
}

func TestCloseReason(t *testing.T) {
	short := "too slow"
	require.Equal(t, short, closeReason(short))
	long := strings.Repeat("é", 100) // 200 bytes
	got := closeReason(long)
	require.LessOrEqual(t, len(got), maxCloseReason)
	require.Equal(t, strings.Repeat("é", 61), got, "cut at a rune boundary")

	// A long reason still reaches the peer, shortened.
	s, ts := newTestServer(t)
	connects := trackConnects(s)
	p, c := dialClient(t, ts, connects)
	c.link.closeWith(4001, strings.Repeat("x", 300))
	ce := p.closeErr()
	require.Equal(t, 4001, ce.Code)
	require.Equal(t, strings.Repeat("x", maxCloseReason), ce.Text)
}

func TestCloseSendsQueuedMessagesFirst(t *testing.T) {
	s, ts := newTestServer(t)
	connects := trackConnects(s)
	disconnects := trackDisconnects(s)
	p, c := dialClient(t, ts, connects)
	for i := 0; i < 100; i++ {
		require.NoError(t, c.Send("n", Params{"i": i}))
	}
	c.Close()
	require.ErrorIs(t, c.Send("late", nil), ErrClosed)
	p.readNumbered("n", 0, 99)
	ce := p.closeErr()
	require.Equal(t, websocket.CloseNormalClosure, ce.Code)
	receive(t, disconnects, "the disconnect handler")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx))
}
