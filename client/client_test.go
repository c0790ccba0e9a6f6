package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/client"
	"github.com/wszero/wszero/wszerotest"
)

// calcServer is a server with the handlers most tests call.
func calcServer(opts ...wszero.Option) *wszero.Server {
	s := newServer(opts...)
	s.On("add", func(c *wszero.Client, p struct{ A, B int }) int { return p.A + p.B })
	s.On("say", func(c *wszero.Client, p struct{ Text string }) error {
		return c.Send("said", wszero.Params{"text": p.Text})
	})
	s.On("withdraw", func(c *wszero.Client, p struct{ Amount int }) (int, error) {
		if p.Amount > 10 {
			return 0, errors.New("not enough money")
		}
		return 10 - p.Amount, nil
	})
	s.On("nothing", func(c *wszero.Client) {})
	s.On("echo", func(c *wszero.Client, p wszero.Params) wszero.Params { return p })
	return s
}

// pushServer is a server whose "push" handler sends the message it is
// asked to: {"op": "push", "to": op, "params": {…}}.
func pushServer() *wszero.Server {
	s := newServer()
	s.On("push", func(c *wszero.Client, p struct {
		To     string
		Params wszero.Params `json:"params,omitempty"`
	}) error {
		return c.Send(p.To, p.Params)
	})
	return s
}

func TestCallSendAndOn(t *testing.T) {
	srv := wszerotest.NewServer(t, calcServer())
	c := dial(t, srv.URL)

	var sum int
	require.NoError(t, c.Call(ctx(t), "add", wszero.Params{"a": 2, "b": 3}, &sum))
	require.Equal(t, 5, sum)

	said := make(chan string, 1)
	c.On("said", func(p struct{ Text string }) { said <- p.Text })
	require.NoError(t, c.Send("say", wszero.Params{"text": "hi"}))
	require.Equal(t, "hi", receive(t, said))

	// params may be a struct or a map; op wins over an "op" key.
	var echoed map[string]any
	require.NoError(t, c.Call(ctx(t), "echo", struct {
		Op string `json:"op"`
		N  int    `json:"n"`
	}{"not this", 7}, &echoed))
	require.Equal(t, map[string]any{"n": 7.0}, echoed)
	echoed = nil
	require.NoError(t, c.Call(ctx(t), "echo", map[string]any{"op": "x", "k": "v"}, &echoed))
	require.Equal(t, map[string]any{"k": "v"}, echoed)

	// nil result: the answer is awaited but not decoded.
	require.NoError(t, c.Call(ctx(t), "add", wszero.Params{"a": 1, "b": 1}, nil))
	// A handler that returns nothing answers null.
	var none *int
	require.NoError(t, c.Call(ctx(t), "nothing", nil, &none))
	require.Nil(t, none)
}

func TestHandlerShapes(t *testing.T) {
	type msg struct {
		Text string
		N    int `json:"n,omitempty"`
	}
	cases := []struct {
		name   string
		params wszero.Params
		make   func(got chan<- any) any
		want   any
	}{
		{"func()", nil, func(got chan<- any) any { return func() { got <- "ran" } }, "ran"},
		{"func() error", nil, func(got chan<- any) any { return func() error { got <- "ran"; return nil } }, "ran"},
		{"func(Params)", wszero.Params{"text": "hi", "n": 2}, func(got chan<- any) any { return func(p wszero.Params) { got <- p } },
			wszero.Params{"text": "hi", "n": 2.0}},
		{"func(map)", wszero.Params{"text": "hi"}, func(got chan<- any) any { return func(p map[string]any) error { got <- p; return nil } },
			map[string]any{"text": "hi"}},
		{"func(T)", wszero.Params{"text": "hi", "n": 2}, func(got chan<- any) any { return func(p msg) { got <- p } }, msg{"hi", 2}},
		{"func(*T) error", wszero.Params{"text": "hi"}, func(got chan<- any) any { return func(p *msg) error { got <- *p; return nil } }, msg{"hi", 0}},
		{"func(anonymous struct)", wszero.Params{"text": "hi"}, func(got chan<- any) any {
			return func(p struct{ Text string }) { got <- p.Text }
		}, "hi"},
	}
	srv := wszerotest.NewServer(t, pushServer())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan any, 1)
			c := dial(t, srv.URL)
			c.On("msg", tc.make(got))
			require.NoError(t, c.Send("push", wszero.Params{"to": "msg", "params": tc.params}))
			require.Equal(t, tc.want, receive(t, got))
		})
	}
}

// onPanic calls c.On(op, fn) and returns what it panicked with ("" when it
// did not), and the file:line of the On call.
func onPanic(c *client.Conn, op string, fn any) (msg, where string) {
	defer func() {
		if v := recover(); v != nil {
			msg = fmt.Sprint(v)
		}
	}()
	_, file, line, _ := runtime.Caller(0)
	where = fmt.Sprintf("%s:%d", file, line+2)
	c.On(op, fn) // must stay two lines below runtime.Caller
	return "", where
}

func TestOnPanicsOnWrongShapes(t *testing.T) {
	shapes := "A handler on the client must be a function of one of these shapes:\n" +
		"    func()\n    func(p wszero.Params)\n" +
		"    func(p T)          // T is a struct, like struct{ Text string }, or a pointer to one\n" +
		"and it may return nothing or an error (which is logged)."
	var nilFunc func()
	cases := []struct {
		name, op string
		fn       any
		reason   string
	}{
		{"not a function", "x", 42, "the handler has type int, not a function.\n" + shapes},
		{"nil", "x", nil, "the handler is nil.\n" + shapes},
		{"nil function", "x", nilFunc, "the handler is a nil func().\n" + shapes},
		{"server's shape", "x", func(c *wszero.Client, p wszero.Params) {},
			"the handler func(*wszero.Client, wszero.Params) takes a *wszero.Client: that is for handlers on the server; " +
				"a handler on the client takes only the message's parameters.\n" + shapes},
		{"two parameters", "x", func(a, b wszero.Params) {},
			"the handler func(wszero.Params, wszero.Params) takes 2 parameters: a handler takes at most one, its parameters.\n" + shapes},
		{"variadic", "x", func(n ...int) {}, "the handler func(...int) takes ...int: a handler cannot take a variable number of parameters.\n" + shapes},
		{"int parameter", "x", func(n int) {}, "the handler func(int) takes int as its parameter, which must be wszero.Params or a struct.\n" + shapes},
		{"other map", "x", func(m map[string]int) {},
			"the handler func(map[string]int) takes map[string]int as its parameter, which must be wszero.Params or a struct.\n" + shapes},
		{"returns a value", "x", func() int { return 0 },
			"the handler func() int returns int: nothing receives what it returns, so return nothing or an error.\n" + shapes},
		{"returns a value and an error", "x", func(p wszero.Params) (int, error) { return 0, nil },
			"the handler func(wszero.Params) (int, error) returns (int, error): nothing receives what it returns, so return nothing or an error.\n" + shapes},
		{"field named op", "x", func(p struct{ Op string }) {},
			"the handler func(struct { Op string }) cannot take its parameters: field Op would bind the key \"op\", " +
				"but keys named \"op\" or starting with \"_\" belong to wszero; give the field another name with a json tag, like `json:\"kind\"`"},
		{"empty op", "", func() {}, `the op is empty: give the handler a name, like c.On("news", news)`},
		{"protocol op", "_ping", func() {}, `ops starting with "_" belong to the wszero protocol: choose a name without the "_"`},
	}
	srv := wszerotest.NewServer(t, newServer())
	c := dial(t, srv.URL)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg, where := onPanic(c, tc.op, tc.fn)
			require.Equal(t, fmt.Sprintf("client: On(%q, …) at %s: %s", tc.op, where, tc.reason), msg)
		})
	}

	t.Run("the same op twice", func(t *testing.T) {
		c.On("twice", func() {})
		_, file, line, _ := runtime.Caller(0)
		first := fmt.Sprintf("%s:%d", file, line-1)
		msg, second := onPanic(c, "twice", func(p wszero.Params) {})
		require.Equal(t, fmt.Sprintf("client: On(%q, …) at %s: %q already has a handler, registered at %s.\n"+
			"Each op has one handler: remove one of them, or give this one another name.", "twice", second, "twice", first), msg)
	})

	t.Run("WithHandler", func(t *testing.T) {
		var msg string
		func() {
			defer func() { msg = fmt.Sprint(recover()) }()
			client.WithHandler("x", func() int { return 1 })
		}()
		_, file, line, _ := runtime.Caller(0)
		require.Equal(t, fmt.Sprintf("client: WithHandler(%q, …) at %s:%d: %s", "x", file, line-2,
			"the handler func() int returns int: nothing receives what it returns, so return nothing or an error.\n"+shapes), msg)
	})
}

func TestCallErrors(t *testing.T) {
	srv := wszerotest.NewServer(t, calcServer())
	c := dial(t, srv.URL)

	serverErrors := []struct {
		name    string
		op      string
		params  any
		wantOp  string
		wantMsg string
		wantErr string
	}{
		{"handler error", "withdraw", wszero.Params{"amount": 20}, "withdraw", "not enough money", "server: withdraw: not enough money"},
		{"unknown op", "ad", nil, "ad", `no handler for "ad" — did you mean "add"?`, `server: no handler for "ad" — did you mean "add"?`},
		{"wrong type", "add", wszero.Params{"a": 2.5, "b": 1}, "add", `add: "a" should be a whole number, but got 2.5`,
			`server: add: "a" should be a whole number, but got 2.5`},
		{"missing key", "add", wszero.Params{"a": 1}, "add", `add needs "b": add it to the message, like {"op": "add", "b": 1}`,
			`server: add needs "b": add it to the message, like {"op": "add", "b": 1}`},
		{"reserved op", "connect", nil, "connect",
			`"connect" is sent by the server itself when a client arrives or leaves: a client cannot send it; choose another op name`,
			`server: "connect" is sent by the server itself when a client arrives or leaves: a client cannot send it; choose another op name`},
	}
	for _, tc := range serverErrors {
		t.Run(tc.name, func(t *testing.T) {
			var result any
			err := c.Call(ctx(t), tc.op, tc.params, &result)
			var se *client.ServerError
			require.ErrorAs(t, err, &se)
			require.Equal(t, &client.ServerError{Op: tc.wantOp, Message: tc.wantMsg}, se)
			require.EqualError(t, err, tc.wantErr)
			require.Nil(t, result)
		})
	}

	t.Run("result that does not fit", func(t *testing.T) {
		var s string
		err := c.Call(ctx(t), "add", wszero.Params{"a": 1, "b": 2}, &s)
		require.ErrorContains(t, err, "client: add answered 3, which does not fit *string: json: cannot unmarshal number")
	})
	t.Run("result that is not a pointer", func(t *testing.T) {
		var n int
		require.EqualError(t, c.Call(ctx(t), "add", wszero.Params{"a": 1, "b": 2}, n),
			`client: Call("add") decodes the result through a pointer, like &sum, or ignores it with nil; got int`)
		var p *int
		require.EqualError(t, c.Call(ctx(t), "add", wszero.Params{"a": 1, "b": 2}, p),
			`client: Call("add") decodes the result through a pointer, like &sum, or ignores it with nil; got *int`)
	})
	t.Run("params that are not an object", func(t *testing.T) {
		require.EqualError(t, c.Call(ctx(t), "add", []int{1, 2}, nil),
			`client: the params of "add" must be wszero.Params, a map or a struct, not []int`)
		require.EqualError(t, c.Send("add", wszero.Params{"f": func() {}}),
			`client: the params of "add" cannot be sent as JSON: json: unsupported type: func()`)
	})
	t.Run("ops no one may send", func(t *testing.T) {
		require.EqualError(t, c.Send("", nil), `client: a message needs an op, like Send("hello", nil)`)
		require.EqualError(t, c.Call(ctx(t), "_reply", nil, nil),
			`client: op "_reply": ops starting with "_" belong to the wszero protocol; choose a name without the "_"`)
	})

	// After all that, the connection still works.
	var sum int
	require.NoError(t, c.Call(ctx(t), "add", wszero.Params{"a": 20, "b": 22}, &sum))
	require.Equal(t, 42, sum)
}

func TestCallContext(t *testing.T) {
	s := newServer(wszero.WithParallelHandlers())
	release := make(chan struct{})
	var releaseOnce sync.Once
	started := make(chan struct{}, 2)
	s.On("slow", func(c *wszero.Client) string {
		started <- struct{}{}
		<-release
		return "late"
	})
	var mu sync.Mutex
	hits := 0
	s.On("hit", func(c *wszero.Client) { mu.Lock(); hits++; mu.Unlock() })
	s.On("hits", func(c *wszero.Client) int { mu.Lock(); defer mu.Unlock(); return hits })
	srv := wszerotest.NewServer(t, s)
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) }) // before the server shuts down

	// Each case has its own client: a client's messages are handled in
	// order, and "slow" holds up what comes after it.
	a := dial(t, srv.URL)
	t.Run("deadline", func(t *testing.T) {
		short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		var r string
		require.ErrorIs(t, a.Call(short, "slow", nil, &r), context.DeadlineExceeded)
		require.Empty(t, r)
		receive(t, started)
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		c := dial(t, srv.URL)
		cctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- c.Call(cctx, "slow", nil, nil) }()
		receive(t, started)
		cancel()
		require.ErrorIs(t, receive(t, errc), context.Canceled)
	})
	t.Run("already cancelled: nothing is sent", func(t *testing.T) {
		c := dial(t, srv.URL)
		cctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, c.Call(cctx, "hit", nil, nil), context.Canceled)
		var n int
		require.NoError(t, c.Call(ctx(t), "hits", nil, &n))
		require.Equal(t, 0, n)
	})

	// The forgotten call's late answer is ignored; the next call gets its own.
	releaseOnce.Do(func() { close(release) })
	var n int
	require.NoError(t, a.Call(ctx(t), "hits", nil, &n))
	require.Equal(t, 0, n)
}

func TestConnectionDroppedMidCall(t *testing.T) {
	t.Run("the server closes it", func(t *testing.T) {
		s := newServer()
		s.On("leave", func(c *wszero.Client) string { c.Close(); return "never sent" })
		srv := wszerotest.NewServer(t, s)
		c := dial(t, srv.URL)
		err := c.Call(ctx(t), "leave", nil, nil)
		require.ErrorIs(t, err, client.ErrConnectionLost)
		require.EqualError(t, err, `client: the connection was lost before "leave" was answered: `+
			`the server closed it: websocket: close 1000 (normal): closed by the server`)
		waitDone(t, c)
		require.ErrorIs(t, c.Err(), client.ErrConnectionLost)
		var ce *websocket.CloseError
		require.ErrorAs(t, c.Err(), &ce)
		require.Equal(t, websocket.CloseNormalClosure, ce.Code)
		require.ErrorIs(t, c.Send("leave", nil), client.ErrClosed)
		require.ErrorIs(t, c.Call(ctx(t), "leave", nil, nil), client.ErrClosed)
	})

	t.Run("the network fails: every waiting call fails at once", func(t *testing.T) {
		ts := rawServer(t, func(conn *websocket.Conn) {
			for range 3 { // three calls arrive, and nothing answers them
				if _, _, err := conn.ReadMessage(); err != nil {
					return
				}
			}
			conn.UnderlyingConn().Close() // no close frame: the connection just breaks
		})
		c := dial(t, wsURL(ts))
		errs := make(chan error, 3)
		for range 3 {
			go func() { errs <- c.Call(context.Background(), "wait", nil, nil) }()
		}
		for range 3 {
			err := receive(t, errs)
			require.ErrorIs(t, err, client.ErrConnectionLost)
			require.ErrorContains(t, err, `client: the connection was lost before "wait" was answered: `)
		}
		waitDone(t, c)
		require.ErrorIs(t, c.Err(), client.ErrConnectionLost)
	})
}

func TestServerShutdownEndsTheConn(t *testing.T) {
	srv := wszerotest.NewServer(t, calcServer())
	c := dial(t, srv.URL)
	srv.Close()
	waitDone(t, c)
	require.EqualError(t, c.Err(),
		"client: the connection was lost: the server closed it: websocket: close 1001 (going away): the server is shutting down")
	require.ErrorIs(t, c.Send("say", nil), client.ErrClosed)
}

func TestClose(t *testing.T) {
	s := newServer()
	release := make(chan struct{})
	started := make(chan struct{})
	s.On("wait", func(c *wszero.Client) { close(started); <-release })
	disconnected := make(chan struct{})
	s.On("disconnect", func(c *wszero.Client) { close(disconnected) })
	srv := wszerotest.NewServer(t, s)
	c, err := client.Dial(ctx(t), srv.URL, client.WithLogger(nil))
	require.NoError(t, err)

	errc := make(chan error, 1)
	go func() { errc <- c.Call(context.Background(), "wait", nil, nil) }()
	receive(t, started)

	require.NoError(t, c.Close())
	err = receive(t, errc)
	require.ErrorIs(t, err, client.ErrClosed)
	require.EqualError(t, err, `client: the connection was closed before "wait" was answered`)
	close(release)
	waitDone(t, c)
	require.Equal(t, client.ErrClosed, c.Err())
	receive(t, disconnected) // the server saw the client leave

	require.NoError(t, c.Close(), "Close again does nothing")
	require.Equal(t, client.ErrClosed, c.Send("wait", nil))
	require.Equal(t, client.ErrClosed, c.Call(ctx(t), "wait", nil, nil))
}

func TestErrIsNilWhileOpen(t *testing.T) {
	srv := wszerotest.NewServer(t, calcServer())
	c := dial(t, srv.URL)
	require.NoError(t, c.Err())
	select {
	case <-c.Done():
		t.Fatal("Done is closed while the connection is open")
	default:
	}
}

func TestCloseFromAHandler(t *testing.T) {
	srv := wszerotest.NewServer(t, calcServer())
	c := dial(t, srv.URL)
	closed := make(chan error, 1)
	c.On("said", func(wszero.Params) { closed <- c.Close() })
	require.NoError(t, c.Send("say", wszero.Params{"text": "bye"}))
	require.NoError(t, receive(t, closed))
	waitDone(t, c)
	require.Equal(t, client.ErrClosed, c.Err())
}

func TestHandlersRunInArrivalOrderAndMayCall(t *testing.T) {
	const n = 200
	s := newServer(wszero.WithRateLimit(0, 0))
	s.On("count", func(c *wszero.Client, p struct{ To int }) error {
		for i := range p.To {
			if err := c.Send("n", wszero.Params{"i": i}); err != nil {
				return err
			}
		}
		return nil
	})
	s.On("double", func(c *wszero.Client, p struct{ I int }) int { return 2 * p.I })
	srv := wszerotest.NewServer(t, s)
	c := dial(t, srv.URL)

	got := make(chan int, n)
	c.On("n", func(p struct{ I int }) error {
		// A handler may call the server: answers are read by another
		// goroutine than the one running handlers.
		var d int
		if err := c.Call(context.Background(), "double", wszero.Params{"i": p.I}, &d); err != nil {
			return err
		}
		got <- d / 2
		return nil
	})
	require.NoError(t, c.Send("count", wszero.Params{"to": n}))
	for i := range n {
		require.Equal(t, i, receive(t, got))
	}
}

func TestConcurrentCalls(t *testing.T) {
	srv := wszerotest.NewServer(t, calcServer(wszero.WithRateLimit(0, 0)))
	c := dial(t, srv.URL)
	const goroutines, calls = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*calls)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				var sum int
				if err := c.Call(context.Background(), "add", wszero.Params{"a": g, "b": i}, &sum); err != nil {
					errs <- err
				} else if sum != g+i {
					errs <- fmt.Errorf("%d+%d = %d", g, i, sum)
				}
				if err := c.Send("nothing", nil); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestMessagesNoHandlerTakes(t *testing.T) {
	s := pushServer()
	s.On("fail", func(c *wszero.Client) error { return errors.New("it failed") })
	srv := wszerotest.NewServer(t, s)

	t.Run("logged", func(t *testing.T) {
		log := newLogRecorder()
		c := dial(t, srv.URL, client.WithLogger(log.logger()))
		c.On("news", func(p struct{ Text string }) {})
		c.On("boom", func() { panic("kaboom") })
		c.On("oops", func() error { return errors.New("handler says no") })

		require.NoError(t, c.Send("push", wszero.Params{"to": "weather"}))
		require.Equal(t, "WARN client: no handler for a message from the server op=weather handlers=[boom news oops]",
			log.waitFor(t, "no handler", 1))

		require.NoError(t, c.Send("push", wszero.Params{"to": "news", "params": wszero.Params{"txt": "hi"}}))
		require.Contains(t, log.waitFor(t, "does not fit its handler", 1),
			`ERROR client: a message from the server does not fit its handler, which was not called op=news err=news got "txt" — did you mean "text"?`)

		require.NoError(t, c.Send("fail", nil)) // an error answering no call
		require.Equal(t, "ERROR client: the server sent an error msg=it failed for=fail", log.waitFor(t, "sent an error", 1))

		require.NoError(t, c.Send("push", wszero.Params{"to": "boom"}))
		require.Contains(t, log.waitFor(t, "panicked", 1), "ERROR client: handler panicked op=boom panic=kaboom")
		require.NoError(t, c.Send("push", wszero.Params{"to": "oops"}))
		require.Equal(t, "ERROR client: handler failed op=oops err=handler says no", log.waitFor(t, "handler failed", 1))

		// A parameter type whose UnmarshalJSON panics: logged, and the
		// connection reads on.
		c.On("odd", func(p struct{ V panicky }) { t.Error("the handler ran") })
		require.NoError(t, c.Send("push", wszero.Params{"to": "odd", "params": wszero.Params{"v": 1}}))
		require.Contains(t, log.waitFor(t, "parameters panicked", 1), "ERROR client: reading a message's parameters panicked op=odd panic=cannot decode")
		require.Contains(t, log.waitFor(t, "does not fit its handler", 2), "err=odd could not be read: reading it panicked")
		require.NoError(t, c.Call(ctx(t), "push", wszero.Params{"to": "news", "params": wszero.Params{"text": "still here"}}, nil))
	})

	t.Run("error handler", func(t *testing.T) {
		errs := make(chan *client.ServerError, 1)
		c := dial(t, srv.URL, client.WithHandler("error", func(e *client.ServerError) { errs <- e }))
		require.NoError(t, c.Send("fail", nil))
		require.Equal(t, &client.ServerError{Op: "fail", Message: "it failed"}, receive(t, errs))
		require.NoError(t, c.Send("nosuch", nil))
		require.Equal(t, &client.ServerError{Op: "nosuch", Message: `no handler for "nosuch": the server handles "fail" and "push"`}, receive(t, errs))
	})

	t.Run("WithUnhandled", func(t *testing.T) {
		type msg struct {
			op string
			p  wszero.Params
		}
		got := make(chan msg, 2)
		c := dial(t, srv.URL, client.WithUnhandled(func(op string, p wszero.Params) { got <- msg{op, p} }))
		require.NoError(t, c.Send("push", wszero.Params{"to": "weather", "params": wszero.Params{"sky": "blue"}}))
		require.Equal(t, msg{"weather", wszero.Params{"sky": "blue"}}, receive(t, got))
		require.NoError(t, c.Send("fail", nil))
		require.Equal(t, msg{"error", wszero.Params{"msg": "it failed", "for": "fail"}}, receive(t, got))
	})
}

// panicky panics when it is decoded from JSON.
type panicky struct{}

func (*panicky) UnmarshalJSON([]byte) error { panic("cannot decode") }

func TestWithHandlerCatchesWhatTheServerSendsAtOnce(t *testing.T) {
	s := newServer()
	s.On("connect", func(c *wszero.Client) error { return c.Send("welcome", wszero.Params{"id": c.ID()}) })
	srv := wszerotest.NewServer(t, s)
	ids := make(chan string, 1)
	dial(t, srv.URL, client.WithHandler("welcome", func(p struct{ ID string }) { ids <- p.ID }))
	require.Len(t, receive(t, ids), 16)

	var first, second string
	msg := func() (msg any) {
		defer func() { msg = recover() }()
		first = thisLine(1)
		a := client.WithHandler("welcome", func() {})
		second = thisLine(1)
		b := client.WithHandler("welcome", func() {})
		client.Dial(ctx(t), srv.URL, a, b)
		return nil
	}()
	require.Equal(t, "client: WithHandler(\"welcome\", …) at "+second+": \"welcome\" already has a handler, registered at "+first+".\n"+
		"Each op has one handler: remove one of them, or give this one another name.", msg)
}

// thisLine returns file:line of the line n lines below its caller.
func thisLine(n int) string {
	_, file, line, _ := runtime.Caller(1)
	return fmt.Sprintf("%s:%d", file, line+n)
}

func TestPingIsAnsweredWithPong(t *testing.T) {
	got := make(chan string, 1)
	ts := rawServer(t, func(conn *websocket.Conn) {
		if conn.WriteMessage(websocket.TextMessage, []byte(`{"op":"_ping","every":20000}`)) != nil {
			return
		}
		_, data, err := conn.ReadMessage()
		if err == nil {
			got <- string(data)
		}
		conn.ReadMessage() // until the client closes
	})
	dial(t, wsURL(ts))
	require.Equal(t, `{"op":"_pong"}`, receive(t, got))
}

func TestSilentServerIsTakenAsGone(t *testing.T) {
	// The server says it pings every 100ms, then falls silent: after 1.5
	// times that, the client takes the connection as dead.
	ts := rawServer(t, func(conn *websocket.Conn) {
		conn.WriteMessage(websocket.TextMessage, []byte(`{"op":"_ping","every":100}`))
		conn.SetPingHandler(func(string) error { return nil }) // and answers nothing
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	})
	c := dial(t, wsURL(ts), client.WithLogger(nil))
	waitDone(t, c)
	require.ErrorIs(t, c.Err(), client.ErrConnectionLost)
	require.EqualError(t, c.Err(), "client: the connection was lost: nothing heard from the server for 150ms")
}

func TestStrangeFramesAreLogged(t *testing.T) {
	ts := rawServer(t, func(conn *websocket.Conn) {
		conn.WriteMessage(websocket.TextMessage, []byte(`[1,2]`))
		conn.WriteMessage(websocket.TextMessage, []byte(`{"op":7}`))
		conn.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
		conn.WriteMessage(websocket.TextMessage, []byte(`{"op":"_reply","_ref":99,"result":1}`)) // answers nothing
		conn.WriteMessage(websocket.TextMessage, []byte(`{"op":"_reload"}`))                     // for pages
		conn.WriteMessage(websocket.TextMessage, []byte(`{"op":"hello"}`))
		conn.ReadMessage()
	})
	log := newLogRecorder()
	hello := make(chan struct{})
	dial(t, wsURL(ts), client.WithLogger(log.logger()), client.WithHandler("hello", func() { close(hello) }))
	receive(t, hello)
	require.Equal(t, []string{
		"WARN client: the server sent a frame that is not a JSON object frame=\"[1,2]\"",
		"WARN client: the server sent a message without a string \"op\" frame=\"{\\\"op\\\":7}\"",
		"WARN client: the server sent a binary frame; wszero speaks JSON in text frames bytes=3",
	}, log.all())
}

func TestDialErrors(t *testing.T) {
	// A port that nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	refused := "ws://" + addr + "/ws"

	srv := wszerotest.NewServer(t, newServer())
	cases := []struct {
		name, url, want string
	}{
		{"refused", refused, "client: cannot connect to " + refused + ": dial tcp " + addr + ": connect: connection refused"},
		{"not a URL", "ws://a b", `client: "ws://a b" is not a URL: parse "ws://a b": invalid character " " in host name`},
		{"another scheme", "ftp://localhost/ws", `client: "ftp://localhost/ws" is not a WebSocket address: use ws://host:port/ws, or wss:// for TLS`},
		{"no scheme", "localhost:8000/ws", `client: "localhost:8000/ws" is not a WebSocket address: use ws://host:port/ws, or wss:// for TLS`},
		{"no host", "ws:///ws", `client: "ws:///ws" names no host: use ws://host:port/ws`},
		{"not the endpoint", strings.TrimSuffix(srv.URL, "/ws") + "/",
			"client: " + strings.TrimSuffix(srv.URL, "/ws") + "/ refused the WebSocket connection: 404 Not Found: 404 page not found " +
				`(a wszero server's endpoint ends in "/ws", like ws://localhost:8000/ws)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.Dial(ctx(t), tc.url)
			require.Nil(t, c)
			require.EqualError(t, err, tc.want)
		})
	}

	t.Run("http URL means ws", func(t *testing.T) {
		dial(t, "http"+strings.TrimPrefix(srv.URL, "ws"))
	})
	t.Run("context ends", func(t *testing.T) {
		cctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := client.Dial(cctx, srv.URL)
		require.ErrorIs(t, err, context.Canceled)
	})
}

// TestFramesWithASecondOpAreDropped: a frame with an op after its first
// (however spelled) runs no handler and answers no call.
func TestFramesWithASecondOpAreDropped(t *testing.T) {
	ts := rawServer(t, func(conn *websocket.Conn) {
		var call struct {
			Ref int `json:"_ref"`
		}
		if conn.ReadJSON(&call) != nil {
			return
		}
		for _, frame := range []string{
			`{"op":"said","\u006fp":"boom"}`,
			fmt.Sprintf(`{"op":"said","op":"_reply","_ref":%d,"result":"forged"}`, call.Ref),
			fmt.Sprintf(`{"op":"said","o\u0070":"_reply","_ref":%d,"result":"forged"}`, call.Ref),
			fmt.Sprintf(`{"_ref":%d,"op":"_reply","result":"forged"}`, call.Ref), // not begun with its op
			`{"op":"said","text":"true"}`,
			fmt.Sprintf(`{"op":"_reply","_ref":%d,"result":"real"}`, call.Ref),
		} {
			if conn.WriteMessage(websocket.TextMessage, []byte(frame)) != nil {
				return
			}
		}
		conn.ReadMessage()
	})
	log := newLogRecorder()
	saids := make(chan string, 10)
	c := dial(t, wsURL(ts), client.WithLogger(log.logger()),
		client.WithHandler("said", func(p struct{ Text string }) { saids <- p.Text }),
		client.WithHandler("boom", func() { saids <- "boom ran" }))
	var got string
	require.NoError(t, c.Call(context.Background(), "ask", nil, &got))
	require.Equal(t, "real", got)
	require.Equal(t, "true", receive(t, saids), "only the true frame reached a handler")
	select {
	case s := <-saids:
		t.Fatalf("a forged frame ran a handler: %q", s)
	default:
	}
	lines := log.all()
	require.Len(t, lines, 1, "four frames dropped, one line a second about them")
	require.Contains(t, lines[0], "a frame whose op is not the one it begins with was dropped")
}

// TestTheClientDoesNotTrustItsServer: a frame announced larger than the
// client takes ends the connection before it is read; a server silent
// from the start is taken for gone; a flood of strange frames logs a line
// a second, not a line each.
func TestTheClientDoesNotTrustItsServer(t *testing.T) {
	t.Run("a huge frame", func(t *testing.T) {
		ts := rawServer(t, func(conn *websocket.Conn) {
			// The header of a text frame of 1 GiB, and nothing after it.
			conn.UnderlyingConn().Write([]byte{0x81, 127, 0, 0, 0, 0, 0x40, 0, 0, 0})
			conn.ReadMessage()
		})
		c := dial(t, wsURL(ts), client.WithLogger(nil), client.WithMaxMessageSize(1<<20))
		waitDone(t, c)
		require.EqualError(t, c.Err(), "client: the connection was lost: the server sent a message larger than this client takes (1048576 bytes, client.WithMaxMessageSize)")
	})
	t.Run("a server silent from the start", func(t *testing.T) {
		ts := rawServer(t, func(conn *websocket.Conn) {
			conn.SetPingHandler(func(string) error { return nil })
			conn.ReadMessage()
		})
		c := dial(t, wsURL(ts), client.WithLogger(nil), client.WithKeepalive(100*time.Millisecond))
		waitDone(t, c)
		require.EqualError(t, c.Err(), "client: the connection was lost: nothing heard from the server for 150ms")
	})
	t.Run("a flood of frames nobody handles", func(t *testing.T) {
		const n = 20000
		ts := rawServer(t, func(conn *websocket.Conn) {
			for i := 0; i < n; i++ {
				if conn.WriteMessage(websocket.TextMessage, []byte(`{"op":"spam"}`)) != nil {
					return
				}
			}
			conn.WriteMessage(websocket.TextMessage, []byte(`{"op":"done"}`))
			conn.ReadMessage()
		})
		log := newLogRecorder()
		done := make(chan struct{})
		dial(t, wsURL(ts), client.WithLogger(log.logger()), client.WithHandler("done", func() { close(done) }))
		receive(t, done)
		lines := log.all()
		require.NotEmpty(t, lines)
		require.LessOrEqual(t, len(lines), 10, "%d frames, %d log lines", n, len(lines))
	})
}
