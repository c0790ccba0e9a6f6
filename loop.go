package wszero

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
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

// handOver hands a message from l's client c to the handler loop, which dispatches
// it, unless Shutdown has begun (see takenMessages). When the loop is idle, c's
// reader dispatches it itself, with nothing allocated for it, and writes
// what it sends to c (holdWrites); what is queued meanwhile goes to a
// goroutine of its own, so that no reader is kept from its own client for
// long. With parallel handlers the reader dispatches every message, which
// keeps the client's order.
func (s *Server) handOver(l *link, m message) {
	c := l.c
	if m.empty() || !s.taken.take() {
		return // nothing to do, or Shutdown has begun: the message is not taken
	}
	if s.opts.parallel {
		s.dispatch(c, m)
		s.taken.done()
		return
	}
	switch s.loop.claim() {
	case claimed:
		l.holdWrites()
		s.dispatch(c, m)
		s.taken.done()
		s.loop.release()
		l.releaseWrites()
		return
	case claimStopped:
		s.taken.done() // the message is dropped
		return
	}
	// A client has at most clientLoopTasks messages waiting for the loop:
	// a client that keeps the loop busy waits for its own turn, and its
	// messages wait in its socket, while every other client's get a place.
	if c.inLoop.Add(1) > clientLoopTasks && !s.loop.waitForTurn(c) {
		c.inLoop.Add(-1)
		s.taken.done() // the loop has stopped: the message is dropped
		return
	}
	if !s.submit(func() {
		defer s.taken.done()
		s.dispatch(c, m)
		if c.inLoop.Add(-1) == clientLoopTasks {
			s.loop.turnFreed()
		}
	}) {
		c.inLoop.Add(-1)
		s.taken.done() // the loop has stopped: the message is dropped
	}
}

// clientLoopTasks is how many of one client's messages may wait for the
// handler loop at once: its fair share, so that a client keeping the loop
// saturated delays the others by at most this many of its handlers.
const clientLoopTasks = 8

// waitForTurn waits until c has fewer than clientLoopTasks messages
// waiting for the loop besides the one it is handing over (counted in
// c.inLoop already). It reports false when the loop has stopped.
func (l *handlerLoop) waitForTurn(c *Client) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c.inLoop.Load() > clientLoopTasks && !l.stopped {
		l.notFull.Wait()
	}
	return !l.stopped
}

// turnFreed wakes the readers waiting for their turn: a client's count
// has fallen below clientLoopTasks.
func (l *handlerLoop) turnFreed() {
	l.mu.Lock()
	l.notFull.Broadcast()
	l.mu.Unlock()
}

// takenMessages counts the messages that readers have taken from clients
// and the loop has not yet dispatched: Shutdown takes no more, and waits
// for those to be handled, so that their replies go out before the goodbye.
type takenMessages struct {
	mu     sync.RWMutex
	closed bool // Shutdown has begun: no more are taken
	count  sync.WaitGroup
}

// take reports whether a message a reader has read is taken: after
// Shutdown has begun, none is. A taken message is counted until done.
func (t *takenMessages) take() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return false
	}
	t.count.Add(1)
	return true
}

// done says that a taken message has been dispatched, or dropped.
func (t *takenMessages) done() { t.count.Done() }

// close takes no more messages, and returns a channel closed once every
// message taken before has been done.
func (t *takenMessages) close() <-chan struct{} {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	handled := make(chan struct{})
	go func() {
		t.count.Wait()
		close(handled)
	}()
	return handled
}

// Do runs fn on the handler loop and returns once fn has returned, so that
// code outside the handlers — an HTTP handler, a goroutine of the
// program's own — may use the same variables as the handlers without a
// lock. fn runs after the handlers and callbacks already waiting, and
// before those that come later. With WithParallelHandlers, which has no
// single loop, fn runs on the calling goroutine.
//
// A panic in fn is recovered and logged, and Do returns an error that says
// so. Once Shutdown has stopped the loop, fn does not run and Do returns
// http.ErrServerClosed.
//
// Do must not be called from a handler or an Every or After callback:
// those already run on the loop, where Do would wait for itself forever.
// Call fn directly there.
func (s *Server) Do(fn func()) error {
	if fn == nil {
		panic("wszero.Do(nil): give a function to run")
	}
	done := make(chan struct{})
	var err error
	task := func() {
		defer close(done)
		defer func() {
			if v := recover(); v != nil {
				s.logger().Error("wszero: a function given to Do panicked", "panic", v, "stack", string(debug.Stack()))
				err = fmt.Errorf("wszero: the function given to Do panicked: %v", v)
			}
		}()
		fn()
	}
	if !s.submit(task) {
		return http.ErrServerClosed
	}
	<-done
	return err
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
