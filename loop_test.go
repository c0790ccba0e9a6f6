package wszero

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// onLoop runs fn on s's handler loop, after everything already submitted,
// and waits for it.
func onLoop[T any](t testing.TB, s *Server, fn func() T) T {
	t.Helper()
	ch := make(chan T, 1)
	s.After(0, func() { ch <- fn() })
	return receive(t, ch, "the handler loop")
}

// maxOf raises m to at least v.
func maxOf(m *atomic.Int32, v int32) {
	for {
		old := m.Load()
		if v <= old || m.CompareAndSwap(old, v) {
			return
		}
	}
}

// sendNumbered has each peer send n numbered "work" messages and then a
// call to "done", concurrently, and waits for every reply.
func sendNumbered(t *testing.T, peers []*peer, n int) {
	t.Helper()
	errs := make(chan error, len(peers))
	for _, p := range peers {
		go func(conn *websocket.Conn) {
			errs <- func() error {
				for i := 0; i < n; i++ {
					if err := conn.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"op":"work","n":%d}`, i))); err != nil {
						return err
					}
				}
				if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"op":"done","_ref":1}`)); err != nil {
					return err
				}
				_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
				_, data, err := conn.ReadMessage()
				if err != nil {
					return err
				}
				var m map[string]any
				if err := json.Unmarshal(data, &m); err != nil {
					return err
				}
				if m["op"] != "_reply" || m["result"] != float64(n-1) {
					return fmt.Errorf("done answered %s", data)
				}
				return nil
			}()
		}(p.conn)
	}
	for range peers {
		require.NoError(t, receive(t, errs, "a client to finish"))
	}
}

func TestHandlersRunOneAtATime(t *testing.T) {
	const clients, messages = 20, 50
	s, ts := newTestServer(t)
	var inside, most atomic.Int32
	last := map[*Client]int{} // a plain map: handlers never overlap
	outOfOrder, handled := 0, 0
	s.On("work", func(c *Client, p struct{ N int }) {
		maxOf(&most, inside.Add(1))
		defer inside.Add(-1)
		runtime.Gosched() // a chance for another handler to overlap, if it could
		prev, seen := last[c]
		if !seen && p.N != 0 || seen && p.N != prev+1 {
			outOfOrder++
		}
		last[c] = p.N
		handled++
	})
	s.On("done", func(c *Client) int { return last[c] })
	peers := make([]*peer, clients)
	for i := range peers {
		peers[i] = dial(t, ts)
	}
	sendNumbered(t, peers, messages)
	require.Equal(t, [2]int{clients * messages, 0}, onLoop(t, s, func() [2]int { return [2]int{handled, outOfOrder} }),
		"every message handled, each client's in order")
	require.EqualValues(t, 1, most.Load(), "handlers never ran at the same time")
}

func TestTimersRunOnTheLoop(t *testing.T) {
	s, ts := newTestServer(t)
	var inside, most atomic.Int32
	shared := 0 // a plain variable for handlers and callbacks: the race detector checks
	enter := func() func() {
		maxOf(&most, inside.Add(1))
		runtime.Gosched()
		shared++
		return func() { inside.Add(-1) }
	}
	s.On("work", func(c *Client, p struct{ N int }) { defer enter()() })
	s.On("done", func(c *Client) int { defer enter()(); return 49 })
	ticks := make(chan int, 1000)
	every := s.Every(time.Millisecond, func() {
		defer enter()()
		ticks <- shared
	})
	afters := make(chan struct{}, 100)
	for i := 0; i < 20; i++ {
		s.After(time.Duration(i)*time.Millisecond, func() {
			defer enter()()
			afters <- struct{}{}
		})
	}
	peers := []*peer{dial(t, ts), dial(t, ts), dial(t, ts)}
	sendNumbered(t, peers, 50)
	for i := 0; i < 20; i++ {
		receive(t, ticks, "a tick")
		receive(t, afters, "an After callback")
	}
	every.Stop()
	require.EqualValues(t, 1, most.Load(), "callbacks never overlap handlers")
	require.Positive(t, onLoop(t, s, func() int { return shared }))
}

func TestTimerStop(t *testing.T) {
	s := New(quiet())
	t.Cleanup(func() { require.NoError(t, s.Shutdown(context.Background())) })
	const tick = 2 * time.Millisecond

	t.Run("Every stops", func(t *testing.T) {
		var n atomic.Int32
		ticked := make(chan struct{}, 100)
		every := s.Every(tick, func() { n.Add(1); ticked <- struct{}{} })
		for i := 0; i < 3; i++ {
			receive(t, ticked, "a tick")
		}
		every.Stop()
		at := n.Load()
		// Anything the timer would have done in ten ticks happens before this.
		require.Equal(t, at, onLoopLater(t, s, 10*tick, func() int32 { return n.Load() }))
		every.Stop() // twice is fine
	})
	t.Run("Every stops from inside its callback", func(t *testing.T) {
		var n int
		self := make(chan *Timer, 1)
		stopped := make(chan struct{})
		self <- s.Every(tick, func() {
			n++
			if n == 3 {
				(<-self).Stop()
				close(stopped)
			}
		})
		receive(t, stopped, "the third tick")
		require.Equal(t, 3, onLoopLater(t, s, 10*tick, func() int { return n }))
	})
	t.Run("After stopped before it fires never runs", func(t *testing.T) {
		ran := false
		after := s.After(5*tick, func() { ran = true })
		after.Stop()
		require.False(t, onLoopLater(t, s, 10*tick, func() bool { return ran }))
	})
	t.Run("After runs once", func(t *testing.T) {
		n := 0
		s.After(tick, func() { n++ })
		require.Equal(t, 1, onLoopLater(t, s, 10*tick, func() int { return n }))
	})
	t.Run("Stop after After ran is fine", func(t *testing.T) {
		done := make(chan struct{})
		after := s.After(0, func() { close(done) })
		receive(t, done, "the callback")
		after.Stop()
	})
	t.Run("a panicking Every goes on, and so does the loop", func(t *testing.T) {
		log := newLogSink()
		s := New(log.option())
		t.Cleanup(func() { require.NoError(t, s.Shutdown(context.Background())) })
		ticked := make(chan int, 100)
		n := 0
		every := s.Every(tick, func() {
			n++
			ticked <- n
			panic(fmt.Sprint("tick ", n))
		})
		for i := 1; i <= 3; i++ {
			require.Equal(t, i, receive(t, ticked, "a tick"))
		}
		every.Stop()
		log.waitFor(t, "Every/After callback panicked", "tick 1", "tick 2")
		require.True(t, onLoop(t, s, func() bool { return true }), "the loop still runs")
	})
	t.Run("bad arguments panic", func(t *testing.T) {
		require.Panics(t, func() { s.Every(0, func() {}) })
		require.Panics(t, func() { s.Every(time.Second, nil) })
		require.Panics(t, func() { s.After(time.Second, nil) })
	})
}

// onLoopLater runs fn on the loop after d (and after whatever timers fire
// before then), and returns its result.
func onLoopLater[T any](t testing.TB, s *Server, d time.Duration, fn func() T) T {
	t.Helper()
	ch := make(chan T, 1)
	s.After(d, func() { ch <- fn() })
	return receive(t, ch, "the handler loop")
}

func TestParallelHandlers(t *testing.T) {
	s, ts := newTestServer(t, WithParallelHandlers())
	entered, release := make(chan struct{}), make(chan struct{})
	s.On("wait", func(c *Client) (string, error) {
		close(entered)
		select {
		case <-release:
			return "released", nil
		case <-time.After(testTimeout):
			return "", errors.New("the other client's handler never ran")
		}
	})
	s.On("release", func(c *Client) { close(release) })
	a, b := dial(t, ts), dial(t, ts)
	a.send(`{"op":"wait","_ref":1}`)
	receive(t, entered, "a's handler")
	b.send(`{"op":"release"}`)
	require.Equal(t, "released", a.read()["result"], "b's handler ran while a's waited")
}

func TestParallelHandlersKeepEachClientInOrder(t *testing.T) {
	const clients, messages = 10, 100
	s, ts := newTestServer(t, WithParallelHandlers())
	var outOfOrder, handled, inside, most atomic.Int32
	s.On("work", func(c *Client, p struct{ N int }) {
		maxOf(&most, inside.Add(1))
		defer inside.Add(-1)
		runtime.Gosched()
		prev, seen := c.Get("last").(int)
		if !seen && p.N != 0 || seen && p.N != prev+1 {
			outOfOrder.Add(1)
		}
		c.Set("last", p.N)
		handled.Add(1)
	})
	s.On("done", func(c *Client) int { return c.Get("last").(int) })
	peers := make([]*peer, clients)
	for i := range peers {
		peers[i] = dial(t, ts)
	}
	sendNumbered(t, peers, messages)
	require.EqualValues(t, clients*messages, handled.Load())
	require.Zero(t, outOfOrder.Load())
	t.Logf("at most %d handlers at once", most.Load())
}

func TestParallelTimersFinishBeforeShutdownReturns(t *testing.T) {
	s := New(quiet(), WithParallelHandlers())
	entered, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	s.After(0, func() {
		close(entered)
		<-release
		finished.Store(true)
	})
	receive(t, entered, "the callback")
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	close(release)
	require.NoError(t, receive(t, done, "Shutdown"))
	require.True(t, finished.Load(), "Shutdown waited for the running callback")
}

// TestDo: code outside the handlers runs on the loop with Do, so it shares
// the handlers' variables without a lock (the race detector checks), and
// sees its own changes as soon as Do returns.
func TestDo(t *testing.T) {
	s, ts := newTestServer(t)
	counts := map[string]int{} // the handlers' and Do's, with no lock
	s.On("add", func(c *Client, p struct{ N int }) { counts["messages"] += p.N })
	s.On("sync", func(c *Client) bool { return true })
	hold, holding := make(chan struct{}), make(chan struct{})
	s.On("hold", func(c *Client) {
		holding <- struct{}{}
		<-hold
	})

	t.Run("goroutines and handlers share a map", func(t *testing.T) {
		peers := []*peer{dial(t, ts), dial(t, ts)}
		const goroutines, each = 4, 25
		errs := make(chan error, goroutines*each)
		for range goroutines {
			go func() {
				for range each {
					errs <- s.Do(func() { counts["do"]++ })
				}
			}()
		}
		for _, p := range peers {
			for range 50 {
				p.send(map[string]any{"op": "add", "n": 1})
			}
		}
		for range goroutines * each {
			require.NoError(t, receive(t, errs, "Do to return"))
		}
		for i, p := range peers {
			p.call(i+1, map[string]any{"op": "sync"}) // its adds are handled
		}
		var do, messages int
		require.NoError(t, s.Do(func() { do, messages = counts["do"], counts["messages"] }))
		require.Equal(t, goroutines*each, do)
		require.Equal(t, 100, messages)
	})

	t.Run("fn waits for what is already queued for the loop", func(t *testing.T) {
		p := dial(t, ts)
		p.send(map[string]any{"op": "hold"})
		receive(t, holding, "the handler to hold the loop")
		var order []string
		require.True(t, s.submit(func() { order = append(order, "queued before") }))
		done := make(chan error, 1)
		go func() { done <- s.Do(func() { order = append(order, "do") }) }()
		close(hold)
		require.NoError(t, receive(t, done, "Do to return"))
		require.Equal(t, []string{"queued before", "do"}, order)
	})

	t.Run("a panic is an error, and the loop goes on", func(t *testing.T) {
		err := s.Do(func() { panic("the app's bug") })
		require.ErrorContains(t, err, "the function given to Do panicked: the app's bug")
		p := dial(t, ts)
		require.Equal(t, true, p.call(9, map[string]any{"op": "sync"})["result"])
	})
}

func TestDoAfterShutdown(t *testing.T) {
	s := New(quiet())
	require.NoError(t, s.Shutdown(context.Background()))
	ran := false
	require.ErrorIs(t, s.Do(func() { ran = true }), http.ErrServerClosed)
	require.False(t, ran)
	require.Panics(t, func() { _ = s.Do(nil) })
}

func TestDoWithParallelHandlers(t *testing.T) {
	s := New(quiet(), WithParallelHandlers())
	defer s.Shutdown(context.Background())
	ran := false
	require.NoError(t, s.Do(func() { ran = true }))
	require.True(t, ran, "fn ran on the calling goroutine")
}
