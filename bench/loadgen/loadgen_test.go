package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"

	"github.com/wszero/wszero"
)

// testServer is the benchmark's application in its plainest form: at /ws
// in the Plain dialect, and at /socket.io/ as a Socket.IO server (its
// handshake done by hand), which pings each client once and reports each
// pong on pongs.
type testServer struct {
	addr  string
	pongs chan struct{}
}

func newTestServer(t *testing.T) *testServer {
	ts := &testServer{pongs: make(chan struct{}, 1024)}
	var mu sync.Mutex // guards conns and every write
	conns := map[*websocket.Conn]Dialect{}
	up := websocket.Upgrader{}
	// send writes one of the application's messages in c's dialect.
	send := func(c *websocket.Conn, d Dialect, op string, msg any) {
		out, _ := json.Marshal(msg)
		if d == SocketIO {
			out = append(append([]byte(`42["`+op+`",`), out...), ']')
		}
		_ = c.WriteMessage(websocket.TextMessage, out)
	}
	serve := func(d Dialect) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			conn, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer conn.Close()
			if d == SocketIO {
				_ = conn.WriteMessage(websocket.TextMessage, []byte(`0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`))
				if _, p, err := conn.ReadMessage(); err != nil || string(p) != "40" {
					t.Errorf("socket.io: want 40 after the open packet, got %q %v", p, err)
					return
				}
				_ = conn.WriteMessage(websocket.TextMessage, []byte(`40{"sid":"s1"}`))
			}
			mu.Lock()
			conns[conn] = d
			if d == SocketIO {
				_ = conn.WriteMessage(websocket.TextMessage, []byte("2"))
			}
			mu.Unlock()
			for {
				_, data, err := conn.ReadMessage()
				if err != nil {
					return
				}
				if d == SocketIO {
					if string(data) == "3" {
						ts.pongs <- struct{}{}
						continue
					}
					var event []json.RawMessage
					if !bytes.HasPrefix(data, []byte("42")) || json.Unmarshal(data[2:], &event) != nil || len(event) != 2 {
						t.Errorf("socket.io: not an event: %q", data)
						return
					}
					data = event[1]
				}
				var m struct {
					Op      string
					Seq, Ts int64
					Text    string
				}
				if json.Unmarshal(data, &m) != nil {
					return
				}
				mu.Lock()
				switch m.Op {
				case "echo":
					send(conn, d, "echo", struct {
						Op   string `json:"op"`
						Seq  int64  `json:"seq"`
						Text string `json:"text"`
					}{"echo", m.Seq, m.Text})
				case "pub":
					msg := struct {
						Op   string `json:"op"`
						Seq  int64  `json:"seq"`
						Ts   int64  `json:"ts"`
						Text string `json:"text"`
					}{"msg", m.Seq, m.Ts, m.Text}
					for c, d := range conns {
						send(c, d, "msg", msg)
					}
				}
				mu.Unlock()
			}
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", serve(Plain))
	mux.Handle("/socket.io/", serve(SocketIO))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ts.addr = strings.TrimPrefix(srv.URL, "http://")
	return ts
}

// wantPongs waits for n pongs: every Socket.IO client answered its ping.
func (ts *testServer) wantPongs(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for i := range n {
		select {
		case <-ts.pongs:
		case <-timeout:
			t.Fatalf("%d of %d Socket.IO clients answered the server's ping", i, n)
		}
	}
}

// dialAll dials n connections to addr in dialect d.
func dialAll(t *testing.T, addr string, n int, d Dialect) (*Loop, []*Conn) {
	l, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.CloseAll)
	cs := make([]*Conn, n)
	for i := range cs {
		if cs[i], err = l.Dial(addr, i, d); err != nil {
			t.Fatal(err)
		}
	}
	return l, cs
}

// eachDialect runs scenario against the test server in every dialect; a
// Socket.IO run must also have answered the server's pings.
func eachDialect(t *testing.T, scenario func(l *Loop, cs []*Conn) (Result, error)) {
	for _, d := range []Dialect{Plain, SocketIO} {
		t.Run(d.String(), func(t *testing.T) {
			ts := newTestServer(t)
			l, cs := dialAll(t, ts.addr, 5, d)
			res, err := scenario(l, cs)
			if err != nil {
				t.Fatalf("%+v: %v", res, err)
			}
			if d == SocketIO {
				ts.wantPongs(t, len(cs))
			}
		})
	}
}

// deliveries checks a result, and that something was delivered.
func deliveries(res Result) (Result, error) {
	if err := res.Check(); err != nil {
		return res, err
	}
	if res.Deliveries == 0 {
		return res, errors.New("nothing was delivered")
	}
	return res, nil
}

func TestEcho(t *testing.T) {
	eachDialect(t, func(l *Loop, cs []*Conn) (Result, error) {
		return deliveries(Echo(l, cs, 200*time.Millisecond))
	})
}

func TestFanout(t *testing.T) {
	eachDialect(t, func(l *Loop, cs []*Conn) (Result, error) {
		return deliveries(FanoutClosed(l, cs, 200*time.Millisecond, 4))
	})
}

func TestFanoutRate(t *testing.T) {
	eachDialect(t, func(l *Loop, cs []*Conn) (Result, error) {
		res := FanoutRate(l, cs, 200*time.Millisecond, 500)
		if err := res.Check(); err != nil {
			return res, err
		}
		if res.Deliveries != 100 || res.P99 <= 0 {
			return res, errors.New("want 100 deliveries and a p99")
		}
		return res, nil
	})
}

// A message whose bytes differ from what was sent is counted as corrupt.
func TestParseMsg(t *testing.T) {
	ok := `{"op":"msg","seq":12,"ts":34,"text":"` + Text + `"}`
	if seq, ts, good := parseMsg([]byte(ok), `{"op":"msg","seq":`, true); !good || seq != 12 || ts != 34 {
		t.Fatal("a good message was refused")
	}
	for _, bad := range []string{strings.Replace(ok, "quick", "quack", 1), ok[:len(ok)-1], strings.Replace(ok, `"ts":34`, `"ts":x`, 1)} {
		if _, _, good := parseMsg([]byte(bad), `{"op":"msg","seq":`, true); good {
			t.Fatalf("%s was taken", bad)
		}
	}
}

// An event's argument reaches the scenario only from a whole envelope
// whose event is the argument's op; anything else is passed on as it is,
// and counted as corrupt.
func TestUnwrapEvent(t *testing.T) {
	arg := `{"op":"msg","seq":1,"ts":2,"text":"` + Text + `"}`
	if got, ok := unwrapEvent([]byte(`42["msg",` + arg + `]`)); !ok || string(got) != arg {
		t.Fatalf("a good event gave %q %v", got, ok)
	}
	for _, bad := range []string{
		`42["echo",` + arg + `]`, // the event is not the op
		`42["msg",` + arg,        // no closing bracket
		`42["msg"` + arg + `]`,   // no comma
		`42[msg,` + arg + `]`,    // the name unquoted
		`42["",` + arg + `]`,     // no name
		`42["msg",]`,             // no argument
		`42["msg",{"seq":1}]`,    // an argument without an op
	} {
		if got, ok := unwrapEvent([]byte(bad)); ok {
			t.Errorf("%s was unwrapped to %s", bad, got)
		}
	}
}

// A message sent in the SocketIO dialect is the event its op names.
func TestSendEvent(t *testing.T) {
	ts := newTestServer(t)
	l, cs := dialAll(t, ts.addr, 1, SocketIO)
	if err := cs[0].Send([]byte(`no op`)); err == nil {
		t.Fatal("a message without an op was sent as an event")
	}
	res := Echo(l, cs, 50*time.Millisecond)
	if _, err := deliveries(res); err != nil {
		t.Fatalf("%+v: %v", res, err)
	}
}

// BenchmarkRead is the loop's cost per message received, in each dialect:
// frames of 100 fan-out messages are written into a socket pair, then
// read, parsed in place and checked as the fan-out checks them.
func BenchmarkRead(b *testing.B) {
	for _, d := range []Dialect{Plain, SocketIO} {
		b.Run(d.String(), func(b *testing.B) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer unix.Close(fds[0])
			defer unix.Close(fds[1])
			l, err := NewLoop()
			if err != nil {
				b.Fatal(err)
			}
			defer l.CloseAll()
			got := 0
			l.OnMessage = func(_ *Conn, p []byte) {
				if _, _, ok := parseMsg(p, `{"op":"msg","seq":`, true); !ok {
					b.Fatalf("%q was taken as corrupt", p)
				}
				got++
			}
			msg := []byte(`{"op":"msg","seq":12345,"ts":1234567890,"text":"` + Text + `"}`)
			if d == SocketIO {
				msg = append(append([]byte(`42["msg",`), msg...), ']')
			}
			var batch []byte
			for range 100 {
				batch = append(append(batch, 0x81, byte(len(msg))), msg...)
			}
			c := &Conn{fd: fds[1], dialect: d}
			b.SetBytes(int64(len(batch) / 100))
			b.ResetTimer()
			for i := 0; i < b.N; i += 100 {
				if _, err := unix.Write(fds[0], batch); err != nil {
					b.Fatal(err)
				}
				for want := got + 100; got < want; {
					l.read(c)
				}
			}
		})
	}
}

// TestSessionDialect: against a real wszero server, a Session connection
// reads _session first, counts the numbered messages and acknowledges
// them; the application's messages reach OnMessage, the session's own do
// not.
func TestSessionDialect(t *testing.T) {
	s := wszero.New(wszero.WithLogger(nil))
	srv := httptest.NewServer(s)
	defer srv.Close()
	defer s.Shutdown(context.Background())
	l, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 200)
	l.OnMessage = func(c *Conn, p []byte) { got <- string(p) }
	go l.Run()
	defer func() { l.Stop(); l.CloseAll() }()
	c, err := l.Dial(strings.TrimPrefix(srv.URL, "http://"), 1, Session)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2*ackEvery + 1
	for i := range n {
		if err := s.Broadcast("tick", wszero.Params{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		select {
		case p := <-got:
			if !strings.HasPrefix(p, `{"op":"tick"`) {
				t.Fatalf("message %d: %s", i, p)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d did not arrive", i)
		}
	}
	if c.acked != 2*ackEvery {
		t.Fatalf("acknowledged %d, want %d", c.acked, 2*ackEvery)
	}
}
