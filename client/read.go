package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/internal/binding"
	"github.com/wszero/wszero/internal/protocol"
)

// pong answers the server's _ping.
var pong = []byte(`{"` + protocol.KeyOp + `":"` + protocol.OpPong + `"}`)

// run reads the connection until it drops, then reconnects if it may, and
// so on until the Conn ends.
func (c *Conn) run(ws *websocket.Conn) {
	defer close(c.runDone)
	defer close(c.inbox)
	for {
		why := c.read(ws)
		ws.Close()
		if !c.dropped(why) {
			return
		}
		var err error
		if ws, err = c.reconnect(why); ws == nil {
			c.end(err)
			return
		}
	}
}

// read reads and routes messages until the connection fails, and says why.
func (c *Conn) read(ws *websocket.Conn) *lostError {
	// The server pings this often unless its _ping says otherwise: silence
	// for one and a half times that, from the start, means it is gone.
	every := c.opts.pingEvery
	ws.SetReadLimit(c.opts.maxMessage)
	alive := func() {
		if every > 0 && c.ctx.Err() == nil {
			_ = ws.SetReadDeadline(time.Now().Add(every * 3 / 2))
		}
	}
	alive()
	ws.SetPingHandler(func(data string) error {
		alive()
		_ = ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeTimeout))
		return nil // a failed pong shows as a failed read
	})
	for {
		kind, data, err := ws.ReadMessage()
		if err != nil {
			return c.whyLost(err, every)
		}
		alive()
		if kind != websocket.TextMessage {
			c.logThrottled(slog.LevelWarn, "client: the server sent a binary frame; wszero speaks JSON in text frames", "bytes", len(data))
			continue
		}
		if d, said := c.receive(ws, data); said {
			every = d // 0: the server does not ping, and silence means nothing
			if every == 0 {
				_ = ws.SetReadDeadline(time.Time{})
			}
			alive()
		}
	}
}

// whyLost describes a read error.
func (c *Conn) whyLost(err error, every time.Duration) *lostError {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case c.ctx.Err() != nil:
		return &lostError{why: "closed by the client", cause: err}
	case errors.As(err, &ce):
		return &lostError{why: "the server closed it: " + ce.Error(), cause: err}
	case errors.Is(err, websocket.ErrReadLimit):
		return &lostError{why: fmt.Sprintf("the server sent a message larger than this client takes (%d bytes, client.WithMaxMessageSize)", c.opts.maxMessage), cause: err}
	case errors.As(err, &ne) && ne.Timeout():
		return &lostError{why: fmt.Sprintf("nothing heard from the server for %v", every*3/2), cause: err}
	}
	return &lostError{why: err.Error(), cause: err}
}

// receive routes one message from the server. said reports that it was a
// _ping, whose every is the server's ping interval.
func (c *Conn) receive(ws *websocket.Conn, data []byte) (every time.Duration, said bool) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || raw == nil {
		c.sawNumbered(ws, len(data)) // the server numbered it, whatever it holds
		c.logThrottled(slog.LevelWarn, "client: the server sent a frame that is not a JSON object", "frame", binding.Shorten(string(data)))
		return 0, false
	}
	var op string
	if err := json.Unmarshal(raw[protocol.KeyOp], &op); err != nil {
		c.sawNumbered(ws, len(data))
		c.logThrottled(slog.LevelWarn, `client: the server sent a message without a string "op"`, "frame", binding.Shorten(string(data)))
		return 0, false
	}
	if !protocol.Unnumbered(op) {
		c.sawNumbered(ws, len(data))
	}
	// A wszero server writes one op, first. A frame with another later
	// (however spelled) would choose its own handler, or answer a call.
	if first, ok := binding.FirstOp(data); !ok || first != op {
		c.logThrottled(slog.LevelWarn, "client: a frame whose op is not the one it begins with was dropped", "frame", binding.Shorten(string(data)))
		return 0, false
	}
	ref, isCall := callRef(raw[protocol.KeyRef])
	switch {
	case op == protocol.OpReply:
		if isCall {
			c.answerCall(ref, answer{result: raw[protocol.KeyResult]})
		}
	case op == protocol.OpError && isCall:
		e := serverError(raw)
		c.mu.Lock()
		if call := c.pending[ref]; call != nil && e.Op == "" {
			e.Op = call.op
		}
		c.mu.Unlock()
		c.answerCall(ref, answer{err: e})
	case op == protocol.OpPing:
		var ms float64
		_ = json.Unmarshal(raw[protocol.KeyEvery], &ms)
		c.wmu.Lock()
		_ = c.writeLocked(ws, pong)
		c.wmu.Unlock()
		return time.Duration(ms * float64(time.Millisecond)), true
	case op == protocol.OpAck:
		c.serverTook(raw[protocol.KeyGot])
	case strings.HasPrefix(op, protocol.ReservedPrefix):
		// _reload and whatever else is meant for pages, not programs.
	default:
		c.handle(op, raw)
	}
	return 0, false
}

// callRef reads a _ref this client sent: a positive whole number.
func callRef(r json.RawMessage) (int64, bool) {
	var ref int64
	if len(r) == 0 || json.Unmarshal(r, &ref) != nil || ref <= 0 {
		return 0, false
	}
	return ref, true
}

// serverError reads an "error" message.
func serverError(raw map[string]json.RawMessage) *ServerError {
	e := &ServerError{}
	_ = json.Unmarshal(raw[protocol.KeyMsg], &e.Message)
	_ = json.Unmarshal(raw[protocol.KeyFor], &e.Op)
	return e
}

// handle binds a message to its handler and queues the call, or passes the
// message on when no handler takes it.
func (c *Conn) handle(op string, raw map[string]json.RawMessage) {
	h := c.handlerFor(op)
	if h == nil {
		c.unhandled(op, raw)
		return
	}
	arg, err := c.bind(h, raw)
	if err != nil {
		c.logThrottled(slog.LevelError, "client: a message from the server does not fit its handler, which was not called", "op", op, "err", err, "handler", h.where)
		return
	}
	c.deliver(func() { c.runHandler(h, arg) })
}

// bind binds raw to h's parameter. A panic in a parameter type's own
// UnmarshalJSON is an error, not the end of the reader.
func (c *Conn) bind(h *handler, raw map[string]json.RawMessage) (arg any, err error) {
	defer func() {
		if v := recover(); v != nil {
			c.opts.log.Error("client: reading a message's parameters panicked", "op", h.op, "panic", v, "stack", string(debug.Stack()))
			arg, err = nil, fmt.Errorf("%s could not be read: reading it panicked", h.op)
		}
	}()
	return h.Bind(h.op, raw)
}

// unhandled deals with a message for an op without a handler.
func (c *Conn) unhandled(op string, raw map[string]json.RawMessage) {
	if c.opts.unhandled != nil {
		p, err := binding.BindParams(op, raw)
		if err != nil {
			c.logThrottled(slog.LevelError, "client: a message from the server cannot be read", "op", op, "err", err)
			return
		}
		c.deliver(func() { c.runUnhandled(op, wszero.Params(p)) })
		return
	}
	if op == protocol.OpError {
		e := serverError(raw)
		c.logThrottled(slog.LevelError, "client: the server sent an error", "msg", e.Message, "for", e.Op)
		return
	}
	c.logThrottled(slog.LevelWarn, "client: no handler for a message from the server", "op", op, "handlers", c.handlerOps())
}

// dropped records that the connection dropped for why. It reports whether
// to reconnect; if not, the Conn has ended.
func (c *Conn) dropped(why *lostError) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ws = nil
	switch {
	case c.closed: // by Close, which has failed the calls
		return false
	case c.opts.reconnect == nil:
		c.endLocked(why)
		return false
	}
	if c.sess == nil || c.sess.key == "" {
		// Nothing can be resumed: the calls sent will never be answered.
		c.failCallsLocked(true, why.forCall)
	}
	c.lastLost = why
	c.opts.log.Info("client: connection lost; reconnecting", "url", c.url, "why", why.why)
	return true
}

// end ends the Conn for why, unless Close has already.
func (c *Conn) end(why error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLocked(why)
}

// endLocked ends the Conn for why: no more sending, every call fails;
// c.mu is held.
func (c *Conn) endLocked(why error) {
	if c.closed {
		return
	}
	c.closed, c.err, c.queue = true, why, nil
	lost, ok := why.(*lostError)
	if !ok {
		lost = &lostError{why: strings.TrimPrefix(why.Error(), "client: "), cause: why}
	}
	c.failCallsLocked(false, lost.forCall)
	level := slog.LevelDebug // Err says why
	if _, gaveUp := why.(*gaveUpError); gaveUp {
		level = slog.LevelWarn
	}
	c.opts.log.Log(context.Background(), level, "client: connection ended", "url", c.url, "why", why)
}

// reconnect dials again, with backoff, until it succeeds, Close is called
// or the attempts run out. It sends what was queued meanwhile, then
// returns the new connection; or nil and why it stopped.
func (c *Conn) reconnect(why *lostError) (*websocket.Conn, error) {
	r := c.opts.reconnect
	var last error = why
	for attempt := 1; r.Attempts == 0 || attempt <= r.Attempts; attempt++ {
		t := time.NewTimer(r.delay(attempt))
		select {
		case <-c.ctx.Done():
			t.Stop()
			return nil, ErrClosed
		case <-t.C:
		}
		ws, err := c.dial(c.ctx)
		var sess protocol.Session
		if err == nil {
			if sess, err = c.greet(c.ctx, ws); err != nil {
				ws.Close()
			}
		}
		if err != nil {
			last = err
			c.opts.log.Debug("client: reconnecting failed", "url", c.url, "attempt", attempt, "err", err)
			continue
		}
		if !c.resume(ws, sess) {
			ws.Close()
			return nil, ErrClosed
		}
		c.opts.log.Info("client: reconnected", "url", c.url, "attempts", attempt, "resumed", sess.Resumed, "missed", sess.Missed, "why", sess.Why)
		if c.opts.onSession != nil {
			c.deliver(func() { c.opts.onSession(sessionOf(sess)) })
		}
		if c.opts.onReconnect != nil {
			c.deliver(c.opts.onReconnect)
		}
		return ws, nil
	}
	return nil, &gaveUpError{attempts: r.Attempts, last: last}
}

// resume makes ws the connection and sends, before any other message can
// be written, what the server had not taken (when the session resumed),
// then the queue. It reports false when Close came first.
func (c *Conn) resume(ws *websocket.Conn, sess protocol.Session) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.ws = ws
	again := c.startSessionLocked(sess, c.lastLost)
	c.lastLost = nil
	queue := c.queue
	c.queue = nil
	for _, m := range queue {
		if call := c.pending[m.ref]; call != nil {
			call.sent = true
		}
		if c.sess != nil {
			c.sess.keep(m.data, m.ref)
		}
	}
	kept := c.sess != nil && c.sess.key != "" // as write has it: a session that cannot resume keeps nothing
	c.mu.Unlock()
	for _, m := range again {
		if c.writeLocked(ws, m.data) != nil {
			return true // dropped again: the next resume sends them
		}
	}
	for i, m := range queue {
		if err := c.writeLocked(ws, m.data); err != nil && kept {
			return true // numbered and kept: the next resume sends them
		} else if err != nil {
			// The connection dropped again. What was not written waits for
			// the next one; the message that failed may have been sent.
			c.mu.Lock()
			rest := queue[i+1:]
			for _, m := range rest {
				if call := c.pending[m.ref]; call != nil {
					call.sent = false
				}
			}
			c.queue = append(rest, c.queue...)
			c.mu.Unlock()
			break
		}
	}
	return true
}
