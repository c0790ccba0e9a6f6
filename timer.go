package wszero

import (
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// Timer is a callback scheduled by Every or After. Ignoring it is fine;
// keep it to stop the callback.
type Timer struct {
	s       *Server
	fn      func()
	every   time.Duration // 0 for After
	mu      sync.Mutex
	t       *time.Timer
	next    time.Time
	stopped bool
}

// Stop stops the timer: its callback does not run again. It is safe to call
// more than once, and from inside the callback.
func (t *Timer) Stop() {
	t.mu.Lock()
	t.stopped = true
	if t.t != nil {
		t.t.Stop()
	}
	t.mu.Unlock()
	t.s.timer.forget(t)
}

// timers tracks a server's live timers so that Shutdown can stop them.
type timers struct {
	mu     sync.Mutex
	live   map[*Timer]struct{}
	closed bool
	// firing is held for reading while a timer hands its callback to the
	// loop (or, with parallel handlers, runs it), so that stopAll can wait
	// for callbacks under way.
	firing sync.RWMutex
}

func (ts *timers) add(t *Timer) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return false
	}
	if ts.live == nil {
		ts.live = make(map[*Timer]struct{})
	}
	ts.live[t] = struct{}{}
	return true
}

func (ts *timers) forget(t *Timer) {
	ts.mu.Lock()
	delete(ts.live, t)
	ts.mu.Unlock()
}

// stopAll stops every timer, and waits for the callbacks already running
// on their own goroutines (with parallel handlers) to return.
func (ts *timers) stopAll() {
	ts.mu.Lock()
	ts.closed = true
	live := ts.live
	ts.live = nil
	ts.mu.Unlock()
	for t := range live {
		t.Stop()
	}
	// Wait for callbacks under way: fire holds firing while it runs one.
	ts.firing.Lock()
	defer ts.firing.Unlock()
}

// Every runs fn every d, on the handler loop, so fn may use the same
// variables as the handlers. Ticks keep to the clock: a slow fn delays the
// next tick rather than piling ticks up. It returns a Timer that stops it.
func (s *Server) Every(d time.Duration, fn func()) *Timer {
	if d <= 0 || fn == nil {
		panic(fmt.Sprintf("wszero.Every(%v, fn): give a duration above 0, like time.Second, and a function", d))
	}
	return s.schedule(d, d, fn)
}

// After runs fn once, after d, on the handler loop. It returns a Timer that
// cancels it.
func (s *Server) After(d time.Duration, fn func()) *Timer {
	if fn == nil {
		panic("wszero.After: give a function to run")
	}
	return s.schedule(d, 0, fn)
}

func (s *Server) schedule(first, every time.Duration, fn func()) *Timer {
	t := &Timer{s: s, fn: fn, every: every, next: time.Now().Add(first)}
	if !s.timer.add(t) {
		t.stopped = true
		return t
	}
	t.mu.Lock()
	t.t = time.AfterFunc(first, t.fire)
	t.mu.Unlock()
	return t
}

// fire hands the callback to the loop; the loop re-arms a repeating timer
// once the callback has run.
func (t *Timer) fire() {
	ts := &t.s.timer
	ts.firing.RLock()
	defer ts.firing.RUnlock()
	t.mu.Lock()
	stopped := t.stopped
	t.mu.Unlock()
	if stopped {
		return
	}
	t.s.submit(func() {
		t.mu.Lock()
		stopped := t.stopped
		t.mu.Unlock()
		if stopped {
			return
		}
		t.run()
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.stopped {
			return
		}
		if t.every == 0 {
			t.stopped = true
			t.s.timer.forget(t)
			return
		}
		now := time.Now()
		for !t.next.After(now) {
			t.next = t.next.Add(t.every)
		}
		t.t.Reset(t.next.Sub(now))
	})
}

// run calls the callback, recovering a panic so the loop goes on.
func (t *Timer) run() {
	defer func() {
		if v := recover(); v != nil {
			t.s.logger().Error("wszero: Every/After callback panicked", "panic", v, "stack", string(debug.Stack()))
		}
	}()
	t.fn()
}
