package wszero

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// user is an identity the tests' WithAuthenticate functions return.
type user struct {
	Name    string
	Teacher bool
}

// tokenAuth accepts the token "t-ada" from a cookie, an Authorization
// header or the query, and refuses the rest as the tests want.
func tokenAuth(r *http.Request) (any, error) {
	token := r.URL.Query().Get("token")
	if c, err := r.Cookie("session"); err == nil {
		token = c.Value
	}
	if h := r.Header.Get("Authorization"); h != "" {
		token = strings.TrimPrefix(h, "Bearer ")
	}
	switch token {
	case "t-ada":
		return user{Name: "Ada", Teacher: true}, nil
	case "t-bob":
		return user{Name: "Bob"}, nil
	case "anonymous":
		return nil, nil
	case "":
		return nil, errors.New("log in first: no session cookie")
	case "banned":
		return nil, &HTTPError{Status: http.StatusForbidden, Reason: "you are banned from this class"}
	case "wrapped":
		return nil, fmt.Errorf("checking: %w", &HTTPError{Status: http.StatusForbidden, Reason: "wrapped refusal"})
	case "odd-status":
		return nil, &HTTPError{Status: 302, Reason: "not a redirect"}
	case "no-reason":
		return nil, &HTTPError{Status: http.StatusForbidden}
	case "empty-error":
		return nil, errors.New("")
	case "panic":
		panic("the session store is down")
	}
	return nil, errors.New("unknown token")
}

// handshake dials url and returns the response to the upgrade request: the
// connection when it was accepted (closed when the test ends), else the
// status and body it was refused with.
func handshake(t testing.TB, u string, h http.Header) (conn *websocket.Conn, status int, body string, resp *http.Response) {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(u, h)
	if err == nil {
		t.Cleanup(func() { conn.Close() })
		return conn, resp.StatusCode, "", resp
	}
	require.ErrorIs(t, err, websocket.ErrBadHandshake, "the server answered, and refused")
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	return nil, resp.StatusCode, string(b), resp
}

func TestAuthenticate(t *testing.T) {
	tests := []struct {
		name     string
		query    string
		header   http.Header
		status   int    // 101 when accepted
		body     string // the reason, when refused
		identity any
	}{
		{"a session cookie", "", http.Header{"Cookie": {"session=t-ada"}}, 101, "", map[string]any{"Name": "Ada", "Teacher": true}},
		{"an Authorization header", "", http.Header{"Authorization": {"Bearer t-bob"}}, 101, "", map[string]any{"Name": "Bob", "Teacher": false}},
		{"a token in the query", "?token=t-bob", nil, 101, "", map[string]any{"Name": "Bob", "Teacher": false}},
		{"a nil identity is accepted", "?token=anonymous", nil, 101, "", nil},
		{"a plain error is 401 with its text", "", nil, 401, "log in first: no session cookie", nil},
		{"a plain error with no text is 401", "?token=empty-error", nil, 401, "Unauthorized", nil},
		{"an HTTPError chooses 403", "?token=banned", nil, 403, "you are banned from this class", nil},
		{"a wrapped HTTPError", "?token=wrapped", nil, 403, "wrapped refusal", nil},
		{"an HTTPError outside 400-599 is 401", "?token=odd-status", nil, 401, "not a redirect", nil},
		{"an HTTPError without a reason gives the status text", "?token=no-reason", nil, 403, "Forbidden", nil},
		{"a panic is 500", "?token=panic", nil, 500, "The server failed while checking this connection.", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := newLogSink()
			s := New(log.option(), WithAuthenticate(tokenAuth))
			connects := trackConnects(s)
			s.On("whoami", func(c *Client) any { return c.Identity() })
			ts := startServer(t, s)
			conn, status, body, _ := handshake(t, wsURL(ts, "/ws"+tt.query), tt.header)
			require.Equal(t, tt.status, status)
			if tt.status != http.StatusSwitchingProtocols {
				require.Equal(t, tt.body, strings.TrimSpace(body))
				if tt.status == http.StatusInternalServerError {
					log.waitFor(t, "WithAuthenticate function panicked", "the session store is down")
				} else {
					log.waitFor(t, "connection refused by the WithAuthenticate function", fmt.Sprintf("status=%d", tt.status))
				}
				require.Empty(t, s.Clients())
				return
			}
			c := receive(t, connects, "the connect handler")
			if tt.identity != nil {
				require.IsType(t, user{}, c.Identity(), "the connect handler sees the identity")
			}
			p := &peer{t: t, conn: conn}
			require.Equal(t, tt.identity, p.call(1, map[string]any{"op": "whoami"})["result"])
		})
	}
	t.Run("without WithAuthenticate the identity is nil", func(t *testing.T) {
		s, ts := newTestServer(t)
		s.On("whoami", func(c *Client) any { return c.Identity() })
		r := dial(t, ts).call(1, map[string]any{"op": "whoami"})
		require.Contains(t, r, "result")
		require.Nil(t, r["result"])
	})
	t.Run("the origin is checked before", func(t *testing.T) {
		var calls atomic.Int32
		s, ts := newTestServer(t, WithAuthenticate(func(r *http.Request) (any, error) { calls.Add(1); return nil, nil }))
		_, status, _, _ := handshake(t, wsURL(ts, "/ws"), http.Header{"Origin": {"https://evil.example"}})
		require.Equal(t, http.StatusForbidden, status)
		require.Zero(t, calls.Load(), "a cross-site page never reaches the application's check")
		_ = s
	})
	t.Run("a refused connection does not count against the limits", func(t *testing.T) {
		_, ts := newTestServer(t, WithAuthenticate(tokenAuth), WithMaxConnections(1), WithMaxConnectionsPerIP(1))
		for i := 0; i < 5; i++ {
			_, status, _, _ := handshake(t, wsURL(ts, "/ws"), nil)
			require.Equal(t, http.StatusUnauthorized, status)
		}
		_, status, _, _ := handshake(t, wsURL(ts, "/ws?token="+url.QueryEscape("t-ada")), nil)
		require.Equal(t, http.StatusSwitchingProtocols, status)
	})
	t.Run("nil panics", func(t *testing.T) {
		require.PanicsWithValue(t, "wszero.WithAuthenticate(nil): give it a function that checks the request", func() { WithAuthenticate(nil) })
	})
}

func TestHTTPError(t *testing.T) {
	require.Equal(t, "403 Forbidden: closed", (&HTTPError{Status: 403, Reason: "closed"}).Error())
	require.Equal(t, "401 Unauthorized: Unauthorized", (&HTTPError{}).Error())
	var he *HTTPError
	require.True(t, errors.As(fmt.Errorf("x: %w", &HTTPError{Status: 429}), &he))
}

// guardServer has the ops the guard tests use: "join" puts the sender in a
// group, "kick" and "admin.reset" count their runs on ran.
func guardServer(t *testing.T, ran *atomic.Int32, opts ...Option) (*Server, *peer) {
	t.Helper()
	s, ts := newTestServer(t, opts...)
	s.On("join", func(c *Client, p struct{ Group string }) error { return c.AddToGroup(p.Group) })
	s.On("kick", func(c *Client, p struct{ Who string }) string { ran.Add(1); return "kicked " + p.Who })
	s.On("admin.reset", func(c *Client) string { ran.Add(1); return "reset" })
	s.On("hello", func(c *Client) string { return "hi" })
	return s, dial(t, ts)
}

var teachersOnly = WithGuard("kick", func(c *Client) error {
	if !c.InGroup("teachers") {
		return errors.New("only teachers may kick")
	}
	return nil
})

func TestGuards(t *testing.T) {
	for _, parallel := range []bool{false, true} {
		var extra []Option
		name := "on the loop"
		if parallel {
			extra, name = []Option{WithParallelHandlers()}, "parallel handlers"
		}
		t.Run(name, func(t *testing.T) {
			t.Run("a refused call gets an error that answers it, and the handler does not run", func(t *testing.T) {
				var ran atomic.Int32
				_, p := guardServer(t, &ran, append(extra, teachersOnly)...)
				require.Equal(t, map[string]any{"op": "error", "msg": "only teachers may kick", "for": "kick", "_ref": 1.0},
					p.call(1, map[string]any{"op": "kick", "who": "bob"}))
				require.Equal(t, "hi", p.call(2, map[string]any{"op": "hello"})["result"], "other ops are not guarded")
				require.Zero(t, ran.Load())
			})
			t.Run("a refused message that is not a call gets an error without _ref", func(t *testing.T) {
				var ran atomic.Int32
				_, p := guardServer(t, &ran, append(extra, teachersOnly)...)
				p.send(`{"op":"kick","who":"bob"}`)
				require.Equal(t, map[string]any{"op": "error", "msg": "only teachers may kick", "for": "kick"}, p.read())
				require.Zero(t, ran.Load())
			})
			t.Run("the guard sees what earlier messages did", func(t *testing.T) {
				var ran atomic.Int32
				_, p := guardServer(t, &ran, append(extra, teachersOnly)...)
				p.send(`{"op":"join","group":"teachers"}`) // no wait: the guard runs after join's handler
				require.Equal(t, "kicked bob", p.call(1, map[string]any{"op": "kick", "who": "bob"})["result"])
				require.EqualValues(t, 1, ran.Load())
			})
			t.Run("a refused op hears of the refusal, not of its parameters", func(t *testing.T) {
				var ran atomic.Int32
				_, p := guardServer(t, &ran, append(extra, teachersOnly)...)
				require.Equal(t, "only teachers may kick", p.call(1, map[string]any{"op": "kick", "whom": 1})["msg"])
				p.send(`{"op":"join","group":"teachers"}`)
				require.Contains(t, p.call(2, map[string]any{"op": "kick", "whom": 1})["msg"], `kick got "whom" — did you mean "who"?`,
					"an allowed client learns what to fix")
			})
			t.Run("WithOpGuard sees every op, before WithGuard", func(t *testing.T) {
				var ran atomic.Int32
				var mu sync.Mutex // parallel handlers: the guards run on the readers
				var order []string
				note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
				opGuard := WithOpGuard(func(c *Client, op string) error {
					note("all:" + op)
					if strings.HasPrefix(op, "admin.") && !c.Identity().(user).Teacher {
						return fmt.Errorf("%s is for teachers", op)
					}
					return nil
				})
				kickGuard := WithGuard("kick", func(c *Client) error { note("kick"); return nil })
				s := New(append([]Option{quiet(), opGuard, kickGuard, WithAuthenticate(tokenAuth)}, extra...)...)
				s.On("kick", func(c *Client, p struct{ Who string }) string { ran.Add(1); return "kicked" })
				s.On("admin.reset", func(c *Client) string { ran.Add(1); return "reset" })
				ts := startServer(t, s)
				bob := dialURL(t, websocket.DefaultDialer, wsURL(ts, "/ws?token=t-bob"), nil)
				require.Equal(t, map[string]any{"op": "error", "msg": "admin.reset is for teachers", "for": "admin.reset", "_ref": 1.0},
					bob.call(1, map[string]any{"op": "admin.reset"}))
				require.Equal(t, "kicked", bob.call(2, map[string]any{"op": "kick", "who": "x"})["result"])
				ada := dialURL(t, websocket.DefaultDialer, wsURL(ts, "/ws?token=t-ada"), nil)
				require.Equal(t, "reset", ada.call(3, map[string]any{"op": "admin.reset"})["result"])
				mu.Lock()
				defer mu.Unlock()
				require.Equal(t, []string{"all:admin.reset", "all:kick", "kick", "all:admin.reset"}, order)
				require.EqualValues(t, 2, ran.Load())
			})
			t.Run("every guard for an op must allow it", func(t *testing.T) {
				var ran atomic.Int32
				second := WithGuard("kick", func(c *Client) error { return errors.New("not during the exam") })
				_, p := guardServer(t, &ran, append(extra, teachersOnly, second)...)
				p.send(`{"op":"join","group":"teachers"}`)
				require.Equal(t, "not during the exam", p.call(1, map[string]any{"op": "kick", "who": "bob"})["msg"])
				require.Zero(t, ran.Load())
			})
			t.Run("an error without text still says what", func(t *testing.T) {
				var ran atomic.Int32
				_, p := guardServer(t, &ran, append(extra, WithGuard("kick", func(c *Client) error { return errors.New("") }))...)
				require.Equal(t, `"kick" is not allowed`, p.call(1, map[string]any{"op": "kick", "who": "bob"})["msg"])
			})
			t.Run("a panicking guard refuses, is logged, and the connection goes on", func(t *testing.T) {
				var ran atomic.Int32
				log := newLogSink()
				_, p := guardServer(t, &ran, append(extra, log.option(), WithGuard("kick", func(c *Client) error { panic("guard bug") }))...)
				r := p.call(1, map[string]any{"op": "kick", "who": "bob"})
				require.Equal(t, "error", r["op"])
				require.Contains(t, r["msg"], `"kick" could not be checked`)
				require.NotContains(t, r["msg"], "guard bug")
				log.waitFor(t, "a guard panicked", "guard bug")
				require.Equal(t, "hi", p.call(2, map[string]any{"op": "hello"})["result"])
				require.Zero(t, ran.Load())
			})
			t.Run("a refusal is logged", func(t *testing.T) {
				var ran atomic.Int32
				log := newLogSink()
				_, p := guardServer(t, &ran, append(extra, log.option(), teachersOnly)...)
				p.call(1, map[string]any{"op": "kick", "who": "bob"})
				log.waitFor(t, "a guard refused a message", "op=kick", `err="only teachers may kick"`)
			})
		})
	}
	t.Run("mistakes panic at start-up", func(t *testing.T) {
		ok := func(c *Client) error { return nil }
		for _, op := range []string{"", "_reply", "connect", "disconnect"} {
			require.Panics(t, func() { WithGuard(op, ok) }, op)
		}
		require.Panics(t, func() { WithGuard("kick", nil) })
		require.Panics(t, func() { WithOpGuard(nil) })
	})
}

func TestInGroup(t *testing.T) {
	s, ts := newTestServer(t)
	connects := trackConnects(s)
	_, c := dialClient(t, ts, connects)
	require.False(t, c.InGroup("red"))
	require.NoError(t, c.AddToGroup("red"))
	require.True(t, c.InGroup("red"))
	c.RemoveFromGroup("red")
	require.False(t, c.InGroup("red"))
}
