package wszerotest_test

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/client"
	"github.com/wszero/wszero/wszerotest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// chatServer is the server the tests check. Its "slow" handler waits
// until the test ends.
func chatServer(t testing.TB) *wszero.Server {
	release := make(chan struct{})
	var once sync.Once
	s := wszero.New(wszero.WithLogger(nil))
	s.On("add", func(c *wszero.Client, p struct{ A, B int }) int { return p.A + p.B })
	s.On("shout", func(c *wszero.Client, p struct{ Text string }) error {
		return c.Send("echo", wszero.Params{"text": strings.ToUpper(p.Text)})
	})
	s.On("fail", func(c *wszero.Client) error { return errors.New("it failed") })
	s.On("slow", func(c *wszero.Client) { <-release })
	s.On("leave", func(c *wszero.Client) { c.Close() })
	// Registered once a client is there, so that it runs before the server
	// shuts down.
	s.On("connect", func(c *wszero.Client) { t.Cleanup(func() { once.Do(func() { close(release) }) }) })
	return s
}

func TestAHandlerTestIsShort(t *testing.T) {
	s := wszero.New(wszero.WithLogger(nil))
	s.On("add", func(c *wszero.Client, p struct{ A, B int }) int { return p.A + p.B })
	s.On("say", func(c *wszero.Client, p struct{ Text string }) error {
		return s.Broadcast("said", wszero.Params{"text": p.Text})
	})
	srv := wszerotest.NewServer(t, s)
	ann, bob := srv.Dial(), srv.Dial()

	require.Equal(t, 5.0, ann.Call("add", wszero.Params{"a": 2, "b": 3}))
	require.Equal(t, `add: "a" should be a whole number, but got 2.5`, ann.CallError("add", wszero.Params{"a": 2.5, "b": 3}))
	ann.Send("say", wszero.Params{"text": "hi"})
	require.Equal(t, wszero.Params{"text": "hi"}, bob.Expect("said"))
	require.Equal(t, wszero.Params{"text": "hi"}, ann.Expect("said"))
	bob.Send("sya", nil)
	require.Equal(t, `no handler for "sya" — did you mean "say"?`, bob.ExpectError())
}

func TestExpectKeepsOtherMessages(t *testing.T) {
	srv := wszerotest.NewServer(t, chatServer(t))
	c := srv.Dial()
	c.Send("shout", wszero.Params{"text": "one"})
	c.Send("fail", nil)
	c.Send("shout", wszero.Params{"text": "two"})
	// Messages of one op come in order; other ops wait for their turn.
	require.Equal(t, "it failed", c.ExpectError())
	require.Equal(t, wszero.Params{"text": "ONE"}, c.Expect("echo"))
	require.Equal(t, wszero.Params{"text": "TWO"}, c.Expect("echo"))
}

func TestServerURLAndHTTP(t *testing.T) {
	srv := wszerotest.NewServer(t, chatServer(t))
	require.True(t, strings.HasPrefix(srv.URL, "ws://127.0.0.1:"), srv.URL)
	require.True(t, strings.HasSuffix(srv.URL, "/ws"), srv.URL)
	res, err := srv.HTTP.Client().Get(srv.HTTP.URL + "/wszero.js")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
}

func TestConnAndOptions(t *testing.T) {
	srv := wszerotest.NewServer(t, chatServer(t))
	got := make(chan string, 1)
	c := srv.Dial(client.WithHandler("echo", func(p struct{ Text string }) { got <- p.Text }))

	// The Conn, for a typed result.
	var sum int
	require.NoError(t, c.Conn().Call(t.Context(), "add", wszero.Params{"a": 1, "b": 2}, &sum))
	require.Equal(t, 3, sum)

	// A handler of the Conn takes its op; Expect sees the rest.
	c.Send("shout", wszero.Params{"text": "hey"})
	require.Equal(t, "HEY", <-got)
	c.Send("fail", nil)
	require.Equal(t, "it failed", c.ExpectError())
}

func TestServerCloseEndsClients(t *testing.T) {
	srv := wszerotest.NewServer(t, chatServer(t))
	c := srv.Dial()
	srv.Close()
	<-c.Conn().Done()
	require.ErrorIs(t, c.Conn().Err(), client.ErrConnectionLost)
	srv.Close() // again: nothing happens
}

// fakeT records what a helper reports; Fatalf ends the goroutine, as
// testing.T's does.
type fakeT struct {
	testing.TB // the real one, for Cleanup and Log
	mu         sync.Mutex
	fatal      string
	errors     []string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

// failure runs fn with a fakeT and returns what it failed with ("" if
// it did not).
func failure(t *testing.T, fn func(ft *fakeT)) string {
	ft := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ft)
	}()
	<-done
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.fatal
}

func TestFailures(t *testing.T) {
	cases := []struct {
		name string
		fn   func(c *wszerotest.Client)
		want string
	}{
		{"a message that does not come", func(c *wszerotest.Client) {
			c.Send("shout", wszero.Params{"text": "hi"})
			c.Send("fail", nil)
			c.Expect("said")
		}, "wszerotest: no \"said\" message within 50ms; what arrived instead:\n\t\"echo\" {\"text\":\"HI\"}\n\t\"error\" {\"for\":\"fail\",\"msg\":\"it failed\"}"},
		{"nothing at all", func(c *wszerotest.Client) { c.ExpectError() }, `wszerotest: no "error" message within 50ms; nothing else arrived`},
		{"the connection ends", func(c *wszerotest.Client) {
			c.Timeout = 5 * time.Second
			c.Send("leave", nil)
			c.Expect("said")
		}, `wszerotest: waiting for "said": the connection ended (client: the connection was lost: the server closed it: ` +
			`websocket: close 1000 (normal): closed by the server); nothing else arrived`},
		{"a call that fails", func(c *wszerotest.Client) { c.Call("ad", nil) },
			`wszerotest: calling "ad": server: no handler for "ad" — did you mean "add"?`},
		{"a call that takes too long", func(c *wszerotest.Client) { c.Call("slow", nil) }, `wszerotest: calling "slow": no answer within 50ms`},
		{"an error that does not come", func(c *wszerotest.Client) { c.CallError("add", wszero.Params{"a": 1, "b": 2}) },
			`wszerotest: calling "add": expected an error, but it returned 3`},
		{"an error that is not the server's", func(c *wszerotest.Client) { c.CallError("slow", nil) },
			`wszerotest: calling "slow": expected an error from the server, got: no answer within 50ms`},
		{"a message that cannot be sent", func(c *wszerotest.Client) { c.Send("", nil) },
			`wszerotest: sending "": client: a message needs an op, like Send("hello", nil)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := failure(t, func(ft *fakeT) {
				srv := wszerotest.NewServer(ft, chatServer(t))
				srv.Timeout = 50 * time.Millisecond
				tc.fn(srv.Dial())
			})
			require.Equal(t, tc.want, msg)
		})
	}

	t.Run("dialling a server that refuses", func(t *testing.T) {
		var url string
		msg := failure(t, func(ft *fakeT) {
			srv := wszerotest.NewServer(ft, chatServer(t))
			url = srv.URL
			srv.Dial(client.WithHeader("Origin", "https://elsewhere.example"))
		})
		require.Equal(t, "wszerotest: dialling "+url+": client: "+url+" refused the WebSocket connection: 403 Forbidden: "+
			"This server does not accept WebSocket connections from pages at https://elsewhere.example. "+
			`If that page is yours, allow it with wszero.WithAllowedOrigins("elsewhere.example").`, msg)
	})
}
