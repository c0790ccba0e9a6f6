package wszero

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wszero/wszero/internal/protocol"
)

// The session protocol, spoken by hand over gorilla connections: what the
// server sends first, what resuming takes, what a refusal looks like, and
// the limits on what is kept. The browser and Go clients' tests (in
// browsertest and client) check the whole through a proxy that cuts the
// network.

// sessionPeer is a raw client that speaks sessions: it counts the
// numbered messages it receives, as a client does.
type sessionPeer struct {
	*peer
	id, key string
	seen    uint64
	sent    uint64 // what a resume says it sent
}

// dialSession opens a session connection; with resume set, it resumes
// from (and returns the server's _session as first).
func dialSession(t testing.TB, ts *httptest.Server, resume *sessionPeer) (*sessionPeer, map[string]any) {
	t.Helper()
	d := *websocket.DefaultDialer
	d.Subprotocols = []string{protocol.SubprotocolJSON}
	if resume != nil {
		d.Subprotocols = append(d.Subprotocols, protocol.SubprotocolResume)
	}
	p := dialURL(t, &d, wsURL(ts, "/ws"), nil)
	require.Equal(t, protocol.SubprotocolJSON, p.conn.Subprotocol(), "the server answers with the subprotocol")
	sp := &sessionPeer{peer: p}
	if resume != nil {
		p.send(map[string]any{"op": protocol.OpResume, "id": resume.id, "key": resume.key, "seen": resume.seen, "sent": resume.sent})
		sp.seen = resume.seen
	}
	first := p.read()
	require.Equal(t, protocol.OpSession, first["op"], "_session comes first: %v", first)
	sp.id, _ = first["id"].(string)
	sp.key, _ = first["key"].(string)
	if first["resumed"] != true {
		sp.seen = 0
	}
	return sp, first
}

// next reads the next numbered message, counting it.
func (p *sessionPeer) next() map[string]any {
	p.t.Helper()
	for {
		m := p.read()
		if !protocol.Unnumbered(m["op"].(string)) {
			p.seen++
			return m
		}
	}
}

// drop breaks the connection without a close frame, as a network does.
func (p *sessionPeer) drop() { p.conn.UnderlyingConn().Close() }

// sessionServer is a test server that reports its clients' connect,
// disconnect and client_away.
type sessionServer struct {
	*Server
	ts                          *httptest.Server
	connects, disconnects, away <-chan *Client
}

func newSessionServer(t testing.TB, opts ...Option) *sessionServer {
	s, ts := newTestServer(t, opts...)
	away := make(chan *Client, 16)
	s.On(protocol.OpAway, func(c *Client) { away <- c })
	return &sessionServer{Server: s, ts: ts, connects: trackConnects(s), disconnects: trackDisconnects(s), away: away}
}

// connect opens a session connection, and returns it with the server's
// client for it.
func (s *sessionServer) connect(t testing.TB) (*sessionPeer, *Client) {
	t.Helper()
	p, _ := dialSession(t, s.ts, nil)
	return p, receive(t, s.connects, "connect")
}

// drop breaks p's connection, as a network does, and returns the client
// once the server has it away.
func (s *sessionServer) drop(t testing.TB, p *sessionPeer) *Client {
	t.Helper()
	p.drop()
	return receive(t, s.away, "client_away")
}

func TestSessionFirstMessage(t *testing.T) {
	s := newSessionServer(t)
	p, first := dialSession(t, s.ts, nil)
	c := receive(t, s.connects, "connect")
	require.Equal(t, c.ID(), first["id"])
	require.Equal(t, false, first["resumed"])
	require.Len(t, p.key, 22, "128 bits, base64url")
	require.NotContains(t, p.key, c.ID())
	_, again := dialSession(t, s.ts, nil)
	require.NotEqual(t, p.key, again["key"], "every session has its own key")

	// A plain WebSocket client hears nothing of sessions.
	plain := dial(t, s.ts)
	require.Equal(t, "", plain.conn.Subprotocol())
	s.On("hi", func(c *Client) string { return "hello" })
	require.Equal(t, "hello", plain.call(1, map[string]any{"op": "hi"})["result"])
}

func TestResumeKeepsTheClientAndWhatItMissed(t *testing.T) {
	s := newSessionServer(t)
	back := make(chan *Client, 4)
	s.On(protocol.OpBack, func(c *Client) { back <- c })
	got := make(chan float64, 100)
	s.On("note", func(c *Client, p struct{ N float64 }) { got <- p.N })
	p, c := s.connect(t)
	require.NoError(t, c.AddToGroup("red"))
	c.Set("name", "Ada")
	require.NoError(t, s.BroadcastTo("red", "tick", Params{"n": 1}))
	require.Equal(t, float64(1), p.next()["n"])
	p.send(`{"op":"note","n":1}`)
	require.Equal(t, float64(1), receive(t, got, "note 1"))

	require.Same(t, c, s.drop(t, p))
	require.True(t, c.Away())
	require.NoError(t, s.BroadcastTo("red", "tick", Params{"n": 2}))
	require.NoError(t, c.Send("direct", Params{"n": 3}))
	require.NoError(t, c.EvalJS("4"))

	q, first := dialSession(t, s.ts, p)
	require.Equal(t, true, first["resumed"], "%v", first)
	require.Equal(t, c.ID(), first["id"])
	require.Equal(t, float64(3), first["missed"])
	require.Equal(t, float64(1), first["got"], "the server says how many of the client's messages it took")
	require.NotEqual(t, p.key, q.key, "a key works once")
	require.Equal(t, float64(2), q.next()["n"])
	require.Equal(t, float64(3), q.next()["n"])
	require.Equal(t, "4", q.next()["script"])
	require.Same(t, c, receive(t, back, "client_back"))
	require.False(t, c.Away())
	require.Equal(t, []string{"red"}, c.Groups())
	require.Equal(t, "Ada", c.Get("name"))
	require.Equal(t, 4, int(q.seen))

	// The old key resumes nothing now, and the same words answer a wrong
	// key and an unknown ID: nothing is learnt about which sessions exist.
	stale := &sessionPeer{id: c.ID(), key: p.key, seen: 4}
	_, refused := dialSession(t, s.ts, stale)
	require.Equal(t, false, refused["resumed"])
	unknown := &sessionPeer{id: "nobody", key: p.key}
	_, refused2 := dialSession(t, s.ts, unknown)
	require.Equal(t, refused["why"], refused2["why"])
	require.NotEqual(t, c.ID(), refused["id"])
	receive(t, s.connects, "connect for the refused")
	receive(t, s.connects, "connect for the unknown")
	select {
	case d := <-s.disconnects:
		t.Fatalf("disconnect ran for %s", d.ID())
	default:
	}
	require.False(t, c.Away(), "a refused attempt leaves the session alone")
}

func TestSessionEndsWhenTheClientLeavesOnPurpose(t *testing.T) {
	for _, code := range []int{websocket.CloseNormalClosure, websocket.CloseGoingAway} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			s := newSessionServer(t)
			p, c := s.connect(t)
			require.NoError(t, p.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(code, "bye")))
			require.Same(t, c, receive(t, s.disconnects, "disconnect"))
			_, first := dialSession(t, s.ts, p)
			require.Equal(t, false, first["resumed"])
		})
	}
	t.Run("the server closes it", func(t *testing.T) {
		s := newSessionServer(t)
		p, c := s.connect(t)
		c.Close()
		require.Same(t, c, receive(t, s.disconnects, "disconnect"))
		_, first := dialSession(t, s.ts, p)
		require.Equal(t, false, first["resumed"])
	})
	t.Run("Close while away", func(t *testing.T) {
		s := newSessionServer(t)
		p, c := s.connect(t)
		s.drop(t, p)
		c.Close()
		require.Same(t, c, receive(t, s.disconnects, "disconnect"))
		require.ErrorIs(t, c.Send("x", nil), ErrClosed)
		require.Empty(t, s.Clients())
	})
	t.Run("a message too big", func(t *testing.T) {
		s := newSessionServer(t, WithMaxMessageSize(100))
		p, c := s.connect(t)
		p.send(fmt.Sprintf(`{"op":"x","t":%q}`, make([]byte, 200)))
		require.Equal(t, protocol.CloseTooBig, p.closeErr().Code)
		require.Same(t, c, receive(t, s.disconnects, "disconnect"), "breaking a limit ends the session: sending it again would break it again")
	})
}

func TestResumeWindowEnds(t *testing.T) {
	s := newSessionServer(t, WithResumeWindow(50*time.Millisecond))
	p, c := s.connect(t)
	require.NoError(t, c.AddToGroup("red"))
	p.drop()
	require.Same(t, c, receive(t, s.disconnects, "disconnect when the window passes"))
	require.Empty(t, s.Clients())
	require.Empty(t, s.Members("red"))
	_, first := dialSession(t, s.ts, p)
	require.Equal(t, false, first["resumed"])
	require.Contains(t, first["why"], "ended")
}

func TestResumeOff(t *testing.T) {
	s := newSessionServer(t, WithResumeWindow(0))
	p, first := dialSession(t, s.ts, nil)
	require.Equal(t, "", first["key"], "no key: nothing to resume")
	c := receive(t, s.connects, "connect")
	p.drop()
	require.Same(t, c, receive(t, s.disconnects, "disconnect at once"))
	p.key = "anything"
	_, again := dialSession(t, s.ts, p)
	require.Equal(t, false, again["resumed"])
	require.Contains(t, again["why"], "WithResumeWindow(0)")
}

func TestResumeBufferLimits(t *testing.T) {
	t.Run("per client", func(t *testing.T) {
		s := newSessionServer(t, WithResumeBuffer(5, 1<<20, 1<<30))
		p, c := s.connect(t)
		s.drop(t, p)
		for i := range 6 {
			require.NoError(t, c.Send("n", Params{"n": i}), "kept, as far as the sender knows")
		}
		_, first := dialSession(t, s.ts, p)
		require.Equal(t, false, first["resumed"], "never half-resumed")
		require.Contains(t, first["why"], "more was sent")
		require.Same(t, c, receive(t, s.disconnects, "disconnect"), "the session that cannot resume ends")
	})
	t.Run("within the limits", func(t *testing.T) {
		s := newSessionServer(t, WithResumeBuffer(5, 1<<20, 1<<30))
		p, c := s.connect(t)
		s.drop(t, p)
		for i := range 5 {
			require.NoError(t, c.Send("n", Params{"n": i}))
		}
		q, first := dialSession(t, s.ts, p)
		require.Equal(t, true, first["resumed"])
		for i := range 5 {
			require.Equal(t, float64(i), q.next()["n"])
		}
	})
	t.Run("for the server", func(t *testing.T) {
		s := newSessionServer(t, WithResumeBuffer(100, 1<<20, 1000))
		p, c := s.connect(t)
		s.drop(t, p)
		for range 10 {
			require.NoError(t, c.Send("n", Params{"t": string(make([]byte, 200))}))
		}
		require.LessOrEqual(t, s.resumeBytes.Load(), int64(1000))
		_, first := dialSession(t, s.ts, p)
		require.Equal(t, false, first["resumed"])
		require.Zero(t, s.resumeBytes.Load(), "the ended session let go of what it kept")
	})
}

// TestAcknowledgedMessagesAreLetGo: what the client says it has received
// is no longer kept, and the server says how many of the client's
// messages it has taken every few of them.
func TestAcknowledgedMessagesAreLetGo(t *testing.T) {
	s := newSessionServer(t)
	s.On("note", func(c *Client) {})
	p, c := s.connect(t)
	for i := range 10 {
		require.NoError(t, c.Send("n", Params{"n": i}))
	}
	for range 10 {
		p.next()
	}
	require.Positive(t, s.resumeBytes.Load())
	p.send(string(protocol.AppendAck(nil, protocol.KeySeen, 10)))
	for range protocol.AckEvery {
		p.send(`{"op":"note"}`)
	}
	ack := p.expect(protocol.OpAck)
	require.Equal(t, float64(protocol.AckEvery), ack["got"])
	require.Zero(t, s.resumeBytes.Load(), "acknowledged, let go")
	require.Zero(t, keptFor(c))

	// An _ack for more than was sent changes nothing; one without a count
	// is answered with an error.
	require.NoError(t, c.Send("n", Params{"n": 10}))
	p.next()
	p.send(string(protocol.AppendAck(nil, protocol.KeySeen, 1000)))
	p.send(`{"op":"_ack","seen":"ten"}`)
	require.Contains(t, p.expect("error")["msg"], `"_ack" says how many`)
	require.Equal(t, 2, keptFor(c), "an _ack beyond what was sent lets nothing go: the message and the error are kept")
}

// keptFor returns how many messages c's session keeps for a resume.
func keptFor(c *Client) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.session.log) - c.session.head
}

// TestResumeHandshakeRefusals: a connection that offers to resume and then
// says something else, or nothing useful, gets a new session and the
// words; the server does not wait for ever for a silent one.
func TestResumeHandshakeRefusals(t *testing.T) {
	s := newSessionServer(t, WithHandshakeTimeout(200*time.Millisecond))
	for _, first := range []string{
		`{"op":"hello"}`,
		`not json`,
		`{"op":"_resume","id":"x"}`,
		`{"op":"_resume","id":"x","key":"y","seen":-1}`,
		`{"op":"_resume","id":"x","key":"y","seen":1.5}`,
		`{"op":"_resume","id":"x","key":"y","seen":"1"}`,
	} {
		d := *websocket.DefaultDialer
		d.Subprotocols = []string{protocol.SubprotocolJSON, protocol.SubprotocolResume}
		p := dialURL(t, &d, wsURL(s.ts, "/ws"), nil)
		p.send(first)
		m := p.read()
		require.Equal(t, protocol.OpSession, m["op"], first)
		require.Equal(t, false, m["resumed"], first)
		require.NotEmpty(t, m["why"], first)
		receive(t, s.connects, "connect")
	}
	before := len(s.Clients())
	// Silent: the connection closes after the handshake timeout.
	d := *websocket.DefaultDialer
	d.Subprotocols = []string{protocol.SubprotocolJSON, protocol.SubprotocolResume}
	p := dialURL(t, &d, wsURL(s.ts, "/ws"), nil)
	require.NoError(t, p.conn.SetReadDeadline(time.Now().Add(testTimeout)))
	_, _, err := p.conn.ReadMessage()
	require.Error(t, err)
	require.Len(t, s.Clients(), before, "a silent connection never became a client")
}

// TestTooManyAway: no more clients are away at once than may be
// connected; the one away the longest leaves.
func TestTooManyAway(t *testing.T) {
	s := newSessionServer(t, WithMaxConnections(2))
	var clients []*Client
	for range 3 {
		p, c := s.connect(t)
		clients = append(clients, c)
		s.drop(t, p)
	}
	require.Same(t, clients[0], receive(t, s.disconnects, "the longest away leaves"))
	require.Len(t, s.Clients(), 2)
}

// TestAwayWithoutAConnectionLimit: with connections not limited, clients
// away are bounded by the default, and one away is not made to leave.
func TestAwayWithoutAConnectionLimit(t *testing.T) {
	s := New(quiet(), WithMaxConnections(0))
	require.Equal(t, DefaultMaxConnections, s.maxAway())
	c := offlineClient(s, "away")
	c.session = &session{key: newSessionKey(), awayGen: 1}
	c.link = nil // away
	s.away.add(s, c, 1)
	require.Equal(t, 1, s.away.len())
	require.False(t, c.left, "the only client away stays")
}

// TestShutdownEndsAwaySessions: Shutdown runs the disconnect handler of
// every away client, and does not wait for their windows.
func TestShutdownEndsAwaySessions(t *testing.T) {
	s := newSessionServer(t)
	p, c := s.connect(t)
	s.drop(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx))
	require.Same(t, c, receive(t, s.disconnects, "disconnect"))
}

func TestParseResume(t *testing.T) {
	r, err := protocol.ParseResume([]byte(`{"op":"_resume","id":"a.b","key":"k","seen":12}`))
	require.NoError(t, err)
	require.Equal(t, protocol.Resume{ID: "a.b", Key: "k", Seen: 12}, r)
	big, _ := json.Marshal(map[string]any{"op": "_resume", "id": "a", "key": string(make([]byte, 2000)), "seen": 0})
	_, err = protocol.ParseResume(big)
	require.ErrorContains(t, err, "bytes")
}

// TestSessionKeyHasOneSpelling: a key matches only as the server wrote
// it: not with the unused bits of its last character set, nor padded.
func TestSessionKeyHasOneSpelling(t *testing.T) {
	ss := &session{key: newSessionKey()}
	key := ss.key.String()
	require.True(t, ss.keyMatches(key))
	last := strings.IndexByte(base64URL, key[len(key)-1])
	for _, other := range []string{
		key[:len(key)-1] + string(base64URL[last^1]), // the last 4 bits are not the key's
		key + "==",
		key[:len(key)-1],
		"",
	} {
		require.False(t, ss.keyMatches(other), other)
	}
}

const base64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// TestRefusedTakeoverSaysGoodbye: a resume over a connection the server
// still holds that cannot be granted (more was missed than kept) ends the
// session with its disconnect handler, and Shutdown does not wait for
// ever for it.
func TestRefusedTakeoverSaysGoodbye(t *testing.T) {
	s := newSessionServer(t, WithResumeBuffer(5, 1<<20, 1<<30))
	p, c := s.connect(t)
	for i := range 6 {
		require.NoError(t, c.Send("n", Params{"n": i}))
	}
	_, first := dialSession(t, s.ts, p) // seen 0: the first was let go
	require.Equal(t, false, first["resumed"])
	require.Same(t, c, receive(t, s.disconnects, "disconnect"))
	receive(t, s.connects, "connect of the new one")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx))
}

// TestSessionComesFirstWhileBroadcasting: a client that connects while
// broadcasts stream hears _session before any of them.
func TestSessionComesFirstWhileBroadcasting(t *testing.T) {
	// The broadcaster never pauses: on a busy machine a new client's
	// writer may fall the default queue's 1024 messages behind before it
	// writes anything, and be let go as too slow. What is tested is the
	// order, so the queue is made long enough.
	s, ts := newTestServer(t, WithSendQueue(1<<20, 1<<30))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				_ = s.Broadcast("tick", nil)
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for range 100 {
		d := *websocket.DefaultDialer
		d.Subprotocols = []string{protocol.SubprotocolJSON}
		p := dialURL(t, &d, wsURL(ts, "/ws"), nil)
		require.Equal(t, protocol.OpSession, p.read()["op"])
		p.conn.Close()
	}
}

// TestResumeLetsTheResentThroughTheRateLimit: what a client sends again
// after a resume was sent before the drop; the rate limit does not drop it
// (a burst's worth at most), and the server says what it took.
func TestResumeLetsTheResentThroughTheRateLimit(t *testing.T) {
	s := newSessionServer(t, WithRateLimit(1, 5))
	got := make(chan float64, 100)
	s.On("note", func(c *Client, p struct{ N float64 }) { got <- p.N })
	p, _ := dialSession(t, s.ts, nil)
	receive(t, s.connects, "connect")
	s.drop(t, p)
	// Five notes the server never received (lost with the connection),
	// sent again at once, on top of a burst the new link has of its own.
	q, first := dialSession(t, s.ts, &sessionPeer{id: p.id, key: p.key, sent: 5})
	require.Equal(t, true, first["resumed"])
	require.Equal(t, float64(0), first["got"])
	for i := range 10 {
		q.send(fmt.Sprintf(`{"op":"note","n":%d}`, i))
	}
	for i := range 10 {
		require.Equal(t, float64(i), receive(t, got, "note"))
	}
}
