package wszero

import (
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// handlerLoop runs tasks one at a time, in the order they were submitted.
// Its goroutine runs only while there is work: an idle server, like the
// default server between tests, holds no goroutine for its loop.
type handlerLoop struct {
	mu         sync.Mutex
	notFull    sync.Cond     // signalled when queue has room, or on stop
	queue      []func()      // waiting tasks
	spare      []func()      // a batch's slice, for the next queue
	running    bool          // a goroutine is running the tasks; true whenever queue is not empty
	stopped    bool          // no more tasks are accepted
	doneClosed bool          // done is closed
	done       chan struct{} // closed once stopped and every accepted task has run
}

// loopQueue is how many tasks may wait for the loop before submitters wait.
const loopQueue = 1024

func (l *handlerLoop) init() {
	l.notFull.L = &l.mu
	l.done = make(chan struct{})
}

// submit runs fn on the handler loop, or on the calling goroutine when
// handlers run in parallel (the caller is then the client's own reader, so
// the client's order holds). When loopQueue tasks are waiting, it waits, so
// that readers stop reading from a client while the loop is behind. After
// Shutdown, fn is dropped and submit reports false.
func (s *Server) submit(fn func()) bool {
	if s.opts.parallel {
		fn()
		return true
	}
	l := &s.loop
	l.mu.Lock()
	for len(l.queue) >= loopQueue && !l.stopped {
		l.notFull.Wait()
	}
	if l.stopped {
		l.mu.Unlock()
		return false
	}
	l.queue = append(l.queue, fn)
	if l.running {
		l.mu.Unlock()
		return true
	}
	l.running = true
	l.mu.Unlock()
	go l.run()
	return true
}

// claimResult is what claim found.
type claimResult uint8

const (
	claimed      claimResult = iota // the loop was idle: the caller runs a task now
	claimBusy                       // the loop runs, or tasks wait: queue the task
	claimStopped                    // Shutdown has stopped the loop
)

// claim makes the caller the loop's runner, for one task, when the loop
// is idle: a client's reader then runs its message's handler itself,
// instead of starting a goroutine whose stack would grow again for each
// message, and calls release after.
func (l *handlerLoop) claim() claimResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.stopped:
		return claimStopped
	case l.running: // tasks may be waiting: they come first
		return claimBusy
	}
	l.running = true
	return claimed
}

// release ends a claim: what was queued meanwhile goes to a goroutine of
// its own.
func (l *handlerLoop) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) > 0 {
		go l.run()
		return
	}
	l.running = false
	if l.stopped {
		l.closeDoneLocked()
	}
}

// run runs the waiting tasks, in order, until there are none.
func (l *handlerLoop) run() {
	for l.step() {
	}
}

// step runs the tasks waiting now, in order. When there are none it marks
// the loop idle and reports false.
func (l *handlerLoop) step() bool {
	l.mu.Lock()
	if len(l.queue) == 0 {
		l.running = false
		if l.stopped {
			l.closeDoneLocked()
		}
		l.mu.Unlock()
		return false
	}
	batch := l.queue
	l.queue, l.spare = l.spare[:0], nil
	l.notFull.Broadcast()
	l.mu.Unlock()
	for i, fn := range batch {
		batch[i] = nil
		fn()
	}
	l.mu.Lock()
	if l.spare == nil {
		l.spare = batch[:0]
	}
	l.mu.Unlock()
	return true
}

// closeDoneLocked closes done, once; l.mu is held.
func (l *handlerLoop) closeDoneLocked() {
	if !l.doneClosed {
		l.doneClosed = true
		close(l.done)
	}
}

// stop refuses new tasks, and waits until those already accepted have run.
func (l *handlerLoop) stop() {
	l.mu.Lock()
	l.stopped = true
	l.notFull.Broadcast()
	if !l.running {
		l.closeDoneLocked()
	}
	l.mu.Unlock()
	<-l.done
}

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

// Every runs fn every d on the default server's handler loop.
func Every(d time.Duration, fn func()) *Timer { return Default().Every(d, fn) }

// After runs fn once, after d, on the default server's handler loop.
func After(d time.Duration, fn func()) *Timer { return Default().After(d, fn) }

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
