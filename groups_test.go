package wszero

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// ids lists the IDs of clients, for readable comparisons.
func ids(cs []*Client) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID()
	}
	return out
}

func TestGroups(t *testing.T) {
	s, ts := newTestServer(t)
	connects := trackConnects(s)
	_, a := dialClient(t, ts, connects)
	_, b := dialClient(t, ts, connects)
	_, c := dialClient(t, ts, connects)

	t.Run("AddToGroup is idempotent", func(t *testing.T) {
		require.NoError(t, a.AddToGroup("red"))
		require.NoError(t, a.AddToGroup("red"))
		require.Equal(t, []string{"red"}, a.Groups())
		require.Equal(t, ids([]*Client{a}), ids(s.Members("red")))
		a.RemoveFromGroup("red")
	})
	t.Run("reserved and empty names are refused", func(t *testing.T) {
		for _, name := range []string{"", "_", "_admin", "__"} {
			err := a.AddToGroup(name)
			require.Error(t, err, "%q", name)
			require.Contains(t, err.Error(), "wszero: ")
			require.Error(t, s.BroadcastTo(name, "x", nil), "%q", name)
		}
		require.Contains(t, a.AddToGroup("_admin").Error(), `reserved for wszero; choose a name without the "_"`)
		require.Contains(t, a.AddToGroup("").Error(), `a group needs a name, like "team-red"`)
		require.Empty(t, a.Groups())
	})
	t.Run("RemoveFromGroup is idempotent", func(t *testing.T) {
		a.RemoveFromGroup("never-joined")
		require.Empty(t, a.Groups())
		require.Empty(t, s.Members("never-joined"))
		require.NoError(t, a.AddToGroup("blue"))
		require.NoError(t, b.AddToGroup("blue"))
		a.RemoveFromGroup("blue")
		a.RemoveFromGroup("blue")
		require.Empty(t, a.Groups())
		require.Equal(t, ids([]*Client{b}), ids(s.Members("blue")), "removing a leaves b")
		b.RemoveFromGroup("blue")
		require.Empty(t, s.Members("blue"))
	})
	t.Run("Groups is sorted", func(t *testing.T) {
		for _, g := range []string{"zebra", "apple", "Mango", "banana"} {
			require.NoError(t, a.AddToGroup(g))
		}
		require.Equal(t, []string{"Mango", "apple", "banana", "zebra"}, a.Groups())
		for _, g := range a.Groups() {
			a.RemoveFromGroup(g)
		}
	})
	t.Run("Members and Clients are in connection order", func(t *testing.T) {
		for _, cl := range []*Client{c, a, b} {
			require.NoError(t, cl.AddToGroup("all"))
		}
		require.Equal(t, ids([]*Client{a, b, c}), ids(s.Members("all")))
		require.Equal(t, ids([]*Client{a, b, c}), ids(s.Clients()))
		require.Empty(t, s.Members("nobody"))
	})
	t.Run("IDs are distinct", func(t *testing.T) {
		require.NotEqual(t, a.ID(), b.ID())
		require.NotEqual(t, b.ID(), c.ID())
		require.NotEmpty(t, a.ID())
		require.Contains(t, a.String(), a.ID()+"@127.0.0.1:")
	})
}

func TestBroadcastTo(t *testing.T) {
	s, ts := newTestServer(t)
	connects := trackConnects(s)
	var peers []*peer
	var clients []*Client
	for i := 0; i < 5; i++ {
		p, c := dialClient(t, ts, connects)
		peers, clients = append(peers, p), append(clients, c)
	}
	members := map[int]bool{1: true, 3: true}
	for i := range members {
		require.NoError(t, clients[i].AddToGroup("red"))
	}
	require.NoError(t, s.BroadcastTo("red", "hit", Params{"n": 1}))
	require.NoError(t, s.BroadcastTo("empty-group", "hit", nil), "a group with no members is not an error")
	require.NoError(t, s.Broadcast("all", nil))
	for i, p := range peers {
		if members[i] {
			require.Equal(t, map[string]any{"op": "hit", "n": 1.0}, p.read(), "member %d", i)
		}
		require.Equal(t, map[string]any{"op": "all"}, p.read(), "the next message everyone gets is the first that client %d sees", i)
	}
}

func TestBroadcastRightAfterConnecting(t *testing.T) {
	// A client hears its 101 response only once it is in the server's
	// list, so that a broadcast sent the moment its dial returns reaches it.
	upgraded, proceed := make(chan struct{}), make(chan struct{})
	testHookUpgraded = func() {
		upgraded <- struct{}{}
		<-proceed
	}
	t.Cleanup(func() { testHookUpgraded = nil })
	s, ts := newTestServer(t)

	raw, err := net.Dial("tcp", ts.Listener.Addr().String())
	require.NoError(t, err)
	defer raw.Close()
	_, err = fmt.Fprintf(raw, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", ts.Listener.Addr())
	require.NoError(t, err)
	receive(t, upgraded, "the upgrade")
	// The server has upgraded the connection but not registered the
	// client: nothing may have been written yet (on loopback, what the
	// server writes is in the client's socket when its write returns).
	rc, err := raw.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	var peekErr error
	require.NoError(t, rc.Read(func(fd uintptr) bool {
		_, _, peekErr = syscall.Recvfrom(int(fd), make([]byte, 1), syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	}))
	require.ErrorIs(t, peekErr, syscall.EAGAIN, "the 101 went out before the client was registered")
	close(proceed)

	require.NoError(t, raw.SetReadDeadline(time.Now().Add(testTimeout)))
	br := bufio.NewReader(raw)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	require.NoError(t, s.Broadcast("now", nil))
	frame := make([]byte, 2+len(`{"op":"now"}`))
	_, err = io.ReadFull(br, frame)
	require.NoError(t, err)
	require.Equal(t, `{"op":"now"}`, string(frame[2:]))
}

func TestBroadcastReachesEveryone(t *testing.T) {
	s, ts := newTestServer(t)
	s.On("shout", func(c *Client, p struct{ Text string }) error {
		return s.Broadcast("heard", Params{"text": p.Text, "from": c.ID()})
	})
	connects := trackConnects(s)
	var peers []*peer
	for i := 0; i < 4; i++ {
		p, _ := dialClient(t, ts, connects)
		peers = append(peers, p)
	}
	peers[2].send(`{"op":"shout","text":"hello"}`)
	for _, p := range peers {
		m := p.read()
		require.Equal(t, "heard", m["op"])
		require.Equal(t, "hello", m["text"])
	}
}

func TestDisconnectLeavesGroups(t *testing.T) {
	tests := []struct {
		name  string
		leave func(p *peer, c *Client)
	}{
		{"close frame", func(p *peer, c *Client) {
			require.NoError(t, p.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")))
		}},
		{"abrupt TCP close", func(p *peer, c *Client) {
			require.NoError(t, p.conn.UnderlyingConn().Close())
		}},
		{"TCP reset", func(p *peer, c *Client) {
			tc := p.conn.UnderlyingConn().(interface{ SetLinger(int) error })
			require.NoError(t, tc.SetLinger(0))
			require.NoError(t, p.conn.UnderlyingConn().Close())
		}},
		{"Client.Close by the server", func(p *peer, c *Client) {
			c.Close()
			c.Close() // twice is fine
			ce := p.closeErr()
			require.Equal(t, websocket.CloseNormalClosure, ce.Code)
			require.Equal(t, "closed by the server", ce.Text)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := newTestServer(t)
			connects := trackConnects(s)
			leftFrom := make(chan []string, 10)
			disconnects := make(chan *Client, 10)
			s.On("disconnect", func(c *Client) {
				leftFrom <- c.Groups() // what "Ada left team red" needs
				disconnects <- c
			})
			p, c := dialClient(t, ts, connects)
			_, other := dialClient(t, ts, connects)
			for _, g := range []string{"red", "blue"} {
				require.NoError(t, c.AddToGroup(g))
				require.NoError(t, other.AddToGroup(g))
			}
			tt.leave(p, c)
			require.Equal(t, []string{"blue", "red"}, receive(t, leftFrom, "the disconnect handler"), "the handler sees the groups the client was in")
			require.Equal(t, c, receive(t, disconnects, "the disconnect handler"))
			for _, g := range []string{"red", "blue"} {
				require.Equal(t, ids([]*Client{other}), ids(s.Members(g)), g)
			}
			require.Equal(t, ids([]*Client{other}), ids(s.Clients()))
			require.True(t, c.InGroup("red"), "it was in red when it left")
			err := c.AddToGroup("green")
			require.ErrorIs(t, err, ErrClosed)
			require.Empty(t, s.Members("green"))
			require.ErrorIs(t, c.Send("x", nil), ErrClosed)
			require.ErrorIs(t, c.EvalJS("1"), ErrClosed)
			c.RemoveFromGroup("red") // harmless
			c.Close()                // harmless
		})
	}
}

func TestAddToGroupWhileClosing(t *testing.T) {
	s, ts := newTestServer(t)
	connects := trackConnects(s)
	p, c := dialClient(t, ts, connects)
	c.Close()
	require.ErrorIs(t, c.AddToGroup("late"), ErrClosed, "a client being closed cannot join")
	require.Empty(t, s.Members("late"))
	require.Equal(t, websocket.CloseNormalClosure, p.closeErr().Code)
}

func TestConnectAndDisconnectHandlers(t *testing.T) {
	s, ts := newTestServer(t)
	s.On("connect", func(c *Client) {
		c.Set("name", "guest")
		_ = c.Send("welcome", Params{"id": c.ID()})
	})
	type leaving struct {
		name    string
		sendErr error
	}
	left := make(chan leaving, 1)
	s.On("disconnect", func(c *Client) {
		left <- leaving{c.Get("name").(string), c.Send("late", nil)}
	})
	s.On("name", func(c *Client, p struct{ Name string }) string {
		old := c.Get("name").(string)
		c.Set("name", p.Name)
		return old
	})
	p := dial(t, ts)
	require.NotEmpty(t, p.expect("welcome")["id"], "the connect handler runs before the first message")
	require.Equal(t, "guest", p.call(1, map[string]any{"op": "name", "name": "ada"})["result"])
	require.NoError(t, p.conn.Close())
	l := receive(t, left, "the disconnect handler")
	require.Equal(t, "ada", l.name, "state lives until the disconnect handler")
	require.ErrorIs(t, l.sendErr, ErrClosed)
	require.Empty(t, s.Clients())
}

func TestClientState(t *testing.T) {
	s, ts := newTestServer(t)
	connects := trackConnects(s)
	s.On("get", func(c *Client, p struct{ Key string }) any { return c.Get(p.Key) })
	p, c := dialClient(t, ts, connects)
	require.Nil(t, c.Get("missing"))
	c.Set("score", 3)
	c.Set("score", 4)
	c.Set("name", "ada")
	require.Equal(t, 4, c.Get("score"))
	require.Equal(t, 4.0, p.call(1, map[string]any{"op": "get", "key": "score"})["result"], "handlers see it")
	c.Set("nothing", nil)
	require.Nil(t, c.Get("nothing"))

	// Set and Get from many goroutines at once: the race detector checks.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				c.Set(fmt.Sprint("k", i), j)
				_ = c.Get(fmt.Sprint("k", (i+1)%8))
			}
		}()
	}
	wg.Wait()
	for i := 0; i < 8; i++ {
		require.Equal(t, 99, c.Get(fmt.Sprint("k", i)))
	}
}

// ---- Send and Broadcast params ----

type sendScoreStruct struct {
	Name    string `json:"name"`
	Points  int    `json:"points"`
	Secret  string `json:"-"`
	Note    string `json:"note,omitempty"`
	Untaged bool
}

type sendOpStruct struct {
	Op   string `json:"op"`
	Text string `json:"text"`
}

func TestSendParams(t *testing.T) {
	tests := []struct {
		name   string
		params any
		want   map[string]any
	}{
		{"nil", nil, map[string]any{"op": "msg"}},
		{"nil Params", Params(nil), map[string]any{"op": "msg"}},
		{"nil map", map[string]any(nil), map[string]any{"op": "msg"}},
		{"empty Params", Params{}, map[string]any{"op": "msg"}},
		{"Params", Params{"text": "hi", "n": 2, "list": []int{1, 2}},
			map[string]any{"op": "msg", "text": "hi", "n": 2.0, "list": []any{1.0, 2.0}}},
		{"map[string]any", map[string]any{"text": "hi"}, map[string]any{"op": "msg", "text": "hi"}},
		{"map[string]int", map[string]int{"a": 1, "b": 2}, map[string]any{"op": "msg", "a": 1.0, "b": 2.0}},
		{"struct with json tags", sendScoreStruct{Name: "ada", Points: 3, Secret: "s", Untaged: true},
			map[string]any{"op": "msg", "name": "ada", "points": 3.0, "Untaged": true}},
		{"pointer to struct", &sendScoreStruct{Name: "bob", Note: "n"},
			map[string]any{"op": "msg", "name": "bob", "points": 0.0, "note": "n", "Untaged": false}},
		{"anonymous struct", struct{ X, Y int }{1, 2}, map[string]any{"op": "msg", "X": 1.0, "Y": 2.0}},
		{"nil pointer to struct", (*sendScoreStruct)(nil), map[string]any{"op": "msg"}},
		{"empty struct", struct{}{}, map[string]any{"op": "msg"}},
		{"op in Params loses", Params{"op": "other", "x": 1}, map[string]any{"op": "msg", "x": 1.0}},
		{"op in map loses", map[string]any{"op": "other"}, map[string]any{"op": "msg"}},
		{"op in map[string]string loses", map[string]string{"op": "other", "y": "z"}, map[string]any{"op": "msg", "y": "z"}},
		{"op in struct loses", sendOpStruct{Op: "other", Text: "t"}, map[string]any{"op": "msg", "text": "t"}},
		{"op in pointer to struct loses", &sendOpStruct{Op: "other"}, map[string]any{"op": "msg", "text": ""}},
		{"a value mentioning op is kept", Params{"text": `"op"`}, map[string]any{"op": "msg", "text": `"op"`}},
		{"op in an embedded struct loses", struct {
			sendOpStruct
			N int
		}{sendOpStruct{Op: "other", Text: "t"}, 1}, map[string]any{"op": "msg", "text": "t", "N": 1.0}},
		{"op inside a struct's value is kept", struct {
			Inner map[string]string `json:"inner"`
			Text  string            `json:"text"`
		}{map[string]string{"op": "inner"}, `<"op">`}, map[string]any{"op": "msg", "inner": map[string]any{"op": "inner"}, "text": `<"op">`}},
		{"a struct with its own MarshalJSON", sendMarshaler{}, map[string]any{"op": "msg", "made": "by MarshalJSON"}},
	}
	s, ts := newTestServer(t)
	connects := trackConnects(s)
	p, c := dialClient(t, ts, connects)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.t = t
			require.NoError(t, c.Send("msg", tt.params))
			require.Equal(t, tt.want, p.read())
			require.NoError(t, s.Broadcast("msg", tt.params))
			require.Equal(t, tt.want, p.read(), "Broadcast")
			require.NoError(t, c.AddToGroup("g"))
			require.NoError(t, s.BroadcastTo("g", "msg", tt.params))
			require.Equal(t, tt.want, p.read(), "BroadcastTo")
		})
	}
	t.Run("op comes first on the wire", func(t *testing.T) {
		require.NoError(t, c.Send("msg", Params{"a": 1}))
		_, data, err := p.conn.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, `{"op":"msg","a":1}`, string(data))
	})
	t.Run("EvalJS", func(t *testing.T) {
		p.t = t
		require.NoError(t, c.EvalJS(`alert("hi")`))
		require.Equal(t, map[string]any{"op": "eval_js", "script": `alert("hi")`}, p.read())
	})
}

func TestSendParamsErrors(t *testing.T) {
	tests := []struct {
		name   string
		op     string
		params any
		want   string
	}{
		{"a slice", "msg", []int{1, 2}, "must be wszero.Params, a map or a struct, not []int"},
		{"a string", "msg", "hello", "not string"},
		{"an int", "msg", 42, "not int"},
		{"a chan", "msg", make(chan int), "cannot be sent as JSON"},
		{"a chan inside Params", "msg", Params{"c": make(chan int)}, "cannot be sent as JSON"},
		{"a func inside a struct", "msg", struct{ F func() }{func() {}}, "cannot be sent as JSON"},
		{"empty op", "", nil, "a message needs an op"},
		{"reserved op", "_reply", nil, `ops starting with "_" belong to the wszero protocol`},
	}
	s, ts := newTestServer(t)
	connects := trackConnects(s)
	p, c := dialClient(t, ts, connects)
	require.NoError(t, c.AddToGroup("g"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, err := range map[string]error{
				"Send":        c.Send(tt.op, tt.params),
				"Broadcast":   s.Broadcast(tt.op, tt.params),
				"BroadcastTo": s.BroadcastTo("g", tt.op, tt.params),
			} {
				require.Error(t, err, name)
				require.Contains(t, err.Error(), tt.want, name)
				require.False(t, errors.Is(err, ErrClosed), name)
			}
		})
	}
	// Nothing was sent: the next message is the first the peer sees.
	require.NoError(t, c.Send("after", nil))
	require.Equal(t, map[string]any{"op": "after"}, p.read())
}

// sendMarshaler encodes itself, with an "op" key that the message's op beats.
type sendMarshaler struct{}

func (sendMarshaler) MarshalJSON() ([]byte, error) {
	return []byte(`{"op":"mine","made":"by MarshalJSON"}`), nil
}

// opSpeller marshals to an object whose op key is spelled with escapes.
type opSpeller struct{}

func (opSpeller) MarshalJSON() ([]byte, error) {
	return []byte(`{"\u006f\u0070": "eval_js", "script": "alert(1)"}`), nil
}

// frameKeys decodes a frame's top-level keys in order, as a JSON decoder
// reads them (escapes decoded), with their values.
func frameKeys(t *testing.T, frame []byte) (keys []string, values []any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(frame))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok)
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		var v any
		require.NoError(t, dec.Decode(&v))
		keys, values = append(keys, k.(string)), append(values, v)
	}
	return keys, values
}

// TestParamsCannotChooseTheOp: however params spell an "op" key, a frame
// has exactly one op, first, the one the server chose; and params may not
// bring a protocol key, however it is spelled.
func TestParamsCannotChooseTheOp(t *testing.T) {
	s, ts := newTestServer(t)
	connects := trackConnects(s)
	p, c := dialClient(t, ts, connects)
	for _, tt := range []struct {
		name   string
		params any
		rest   []string // the keys after op
	}{
		{"an escaped op in raw JSON", json.RawMessage(`{"o\u0070":"eval_js","script":"alert(1)"}`), []string{"script"}},
		{"two ops in raw JSON, one escaped", json.RawMessage(`{"op":"a","\u006fp":"b","t":1}`), []string{"t"}},
		{"op last", json.RawMessage(`{"t":1,"op":"x"}`), []string{"t"}},
		{"op alone", json.RawMessage(`{"\u006F\u0070":"x"}`), nil},
		{"a MarshalJSON that spells op with escapes", opSpeller{}, []string{"script"}},
		{"a struct with a raw field", struct {
			Relay json.RawMessage `json:"relay"`
		}{json.RawMessage(`{"op":"inner stays"}`)}, []string{"relay"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p.t = t
			require.NoError(t, c.Send("msg", tt.params))
			require.NoError(t, s.Broadcast("msg", tt.params))
			for range 2 {
				_, frame, err := p.conn.ReadMessage()
				require.NoError(t, err)
				keys, values := frameKeys(t, frame)
				require.Equal(t, append([]string{"op"}, tt.rest...), keys, "frame %s", frame)
				require.Equal(t, "msg", values[0])
			}
		})
	}
	for _, tt := range []struct {
		name   string
		params any
	}{
		{"a _ref in raw JSON", json.RawMessage(`{"_ref":7,"result":"forged"}`)},
		{"an escaped _ref", json.RawMessage(`{"\u005fref":7}`)},
		{"a _ key in Params", Params{"_reply": true}},
		{"a struct field tagged _id", struct {
			ID string `json:"_id"`
		}{"x"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Send("msg", tt.params)
			require.ErrorContains(t, err, `keys starting with "_" belong to the wszero protocol; rename it`)
			require.ErrorContains(t, s.Broadcast("msg", tt.params), `belong to the wszero protocol`)
		})
	}
	p.t = t
	require.NoError(t, c.Send("after", nil))
	require.Equal(t, "after", p.read()["op"], "nothing else was sent")
}

// TestBroadcastOthers: everyone but the sender hears it, and the sender
// does not (the next message it reads is the one after).
func TestBroadcastOthers(t *testing.T) {
	s, ts := newTestServer(t)
	connects := trackConnects(s)
	s.On("say", func(c *Client, p struct{ Text string }) error {
		return c.BroadcastOthers("said", Params{"text": p.Text})
	})
	s.On("team", func(c *Client, p struct{ Text string }) error {
		return c.BroadcastToOthers("red", "team", Params{"text": p.Text})
	})
	var peers []*peer
	var clients []*Client
	for range 3 {
		p, c := dialClient(t, ts, connects)
		peers, clients = append(peers, p), append(clients, c)
	}
	require.NoError(t, clients[0].AddToGroup("red"))
	require.NoError(t, clients[1].AddToGroup("red"))
	peers[0].send(`{"op":"say","text":"hi"}`)
	for _, p := range peers[1:] {
		require.Equal(t, "hi", p.expect("said")["text"])
	}
	peers[0].send(`{"op":"team","text":"red only"}`)
	require.Equal(t, "red only", peers[1].expect("team")["text"])
	// The sender heard neither: the next thing it reads is this.
	require.NoError(t, clients[0].Send("mark", nil))
	require.Equal(t, "mark", peers[0].read()["op"])
	// Nor did the client outside the group.
	require.NoError(t, clients[2].Send("mark", nil))
	require.Equal(t, "mark", peers[2].read()["op"])

	require.ErrorContains(t, clients[0].BroadcastToOthers("_x", "team", nil), "reserved")
	require.Error(t, clients[0].BroadcastOthers("_reply", nil))
}

// TestClientLookup: Client finds a client of this server by its ID, away
// ones included, and nil for an ID that is not here.
func TestClientLookup(t *testing.T) {
	s, ts := newTestServer(t)
	connects, disconnects := trackConnects(s), trackDisconnects(s)
	p, c := dialClient(t, ts, connects)
	require.Same(t, c, s.Client(c.ID()))
	require.Nil(t, s.Client("nobody"))
	require.NoError(t, p.conn.Close())
	receive(t, disconnects, "disconnect")
	require.Nil(t, s.Client(c.ID()), "a client that has left is not found")
}

// TestBroadcastOthersIsFramedOnce: the frame the others get is one,
// shared; the sender's queue stays empty.
func TestBroadcastOthersIsFramedOnce(t *testing.T) {
	s := New(quiet())
	cs := []*Client{fakeClient(s), fakeClient(s), fakeClient(s)}
	require.NoError(t, cs[0].BroadcastOthers("news", Params{"n": 1}))
	require.Empty(t, cs[0].link.send.frames)
	require.Len(t, cs[1].link.send.frames, 1)
	require.Len(t, cs[2].link.send.frames, 1)
	require.NotNil(t, cs[1].link.send.frames[0].prepared)
	require.Same(t, cs[1].link.send.frames[0].prepared, cs[2].link.send.frames[0].prepared)
}
