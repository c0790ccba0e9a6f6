// Package client is a Go client for wszero servers: it speaks the same
// protocol as the browser client, so a Go program, another service, a test
// or a load tool can call a server's handlers and receive its messages.
//
//	c, err := client.Dial(ctx, "ws://localhost:8000/ws")
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//	c.On("said", func(p struct{ Text string }) { fmt.Println(p.Text) })
//	var sum int
//	err = c.Call(ctx, "add", wszero.Params{"a": 2, "b": 3}, &sum)
//
// Handlers take the message's parameters the way the server's do, with
// the same binding rules, but no *wszero.Client: func(), func(wszero.Params)
// or func(T) with T a struct.
//
// # Concurrency
//
// Every method of Conn is safe to call from any goroutine. One goroutine
// reads the connection; handlers run one at a time, in the order their
// messages arrived, on another, so a handler may Call the server and wait
// for the answer. A handler that takes long holds up the handlers after it;
// once 1,024 messages wait for it, the reader waits too, and the server
// sees a slow client. Writes are serialised: Send and Call return once
// their message is written (or queued, while reconnecting).
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/internal/binding"
	"github.com/wszero/wszero/internal/logthrottle"
	"github.com/wszero/wszero/internal/protocol"
)

// Conn is a connection to a wszero server. Make one with Dial.
//
// All methods of Conn are safe to call from any goroutine.
type Conn struct {
	url    string
	opts   options
	dialer *websocket.Dialer
	ctx    context.Context // cancelled by Close: stops reconnecting, drops unhandled messages
	cancel context.CancelFunc

	hmu      sync.RWMutex
	handlers map[string]*handler

	wmu sync.Mutex // one writer at a time, as gorilla/websocket requires

	throttle logthrottle.Throttle // for log lines about what the server sent

	mu       sync.Mutex // guards what follows
	ws       *websocket.Conn
	queue    []outgoing // messages sent while reconnecting
	pending  map[int64]*pendingCall
	lastRef  int64
	closed   bool  // no more sending: Close was called, or the connection ended for good
	err      error // why it ended
	sess     *session
	lastLost *lostError // why the connection dropped, while reconnecting

	inbox     chan func() // handlers to run, in arrival order
	runDone   chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// handler is one registered op.
type handler struct {
	*binding.Handler
	op    string
	where string // file:line of the registration
}

// outgoing is a message waiting for the connection to come back.
type outgoing struct {
	data []byte
	ref  int64 // the call's _ref, 0 for Send
}

// pendingCall is a call waiting for its answer.
type pendingCall struct {
	op     string
	sent   bool // written to a connection: if that drops, the call fails
	answer chan answer
}

// answer is what a call receives: a result, or an error.
type answer struct {
	result json.RawMessage
	err    error
}

const (
	writeTimeout     = 10 * time.Second // bounds one write
	handshakeTimeout = 10 * time.Second // bounds opening a connection, unless ctx is shorter
	closeLinger      = time.Second      // how long Close waits for the server's goodbye
	inboxSize        = 1024             // messages waiting for handlers before reading pauses
)

// handlerShapes is shown whenever On is given something it cannot call.
const handlerShapes = `A handler on the client must be a function of one of these shapes:
    func()
    func(p wszero.Params)
    func(p T)          // T is a struct, like struct{ Text string }, or a pointer to one
and it may return nothing or an error (which is logged).`

// handlerShape is what a client's handlers look like: no leading argument.
var handlerShape = &binding.Shape{
	Params:  reflect.TypeOf(wszero.Params(nil)),
	Allowed: handlerShapes,
}

var serverClientType = reflect.TypeOf((*wszero.Client)(nil))

// Dial connects to the wszero server at url, its WebSocket endpoint:
// "ws://host:port/ws", or "wss://…" for TLS ("http://" and "https://" are
// taken to mean the same). ctx bounds opening the connection only.
//
// Dial fails when the connection cannot be opened, even with
// WithReconnect: reconnecting starts once a connection has been made. When
// the server refuses the request, the error is a *HandshakeError.
func Dial(ctx context.Context, url string, opts ...Option) (*Conn, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	endpoint, err := endpointURL(url)
	if err != nil {
		return nil, err
	}
	c := &Conn{
		url:  endpoint,
		opts: o,
		dialer: &websocket.Dialer{
			Proxy:            http.ProxyFromEnvironment,
			HandshakeTimeout: handshakeTimeout,
			TLSClientConfig:  o.tls,
		},
		handlers: map[string]*handler{},
		pending:  map[int64]*pendingCall{},
		inbox:    make(chan func(), inboxSize),
		runDone:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	for _, h := range o.handlers {
		c.register("WithHandler", h)
	}
	ws, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	first, err := c.greet(ctx, ws)
	if err != nil {
		ws.Close()
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.ws = ws
	c.startSessionLocked(first, nil)
	if c.opts.onSession != nil {
		c.deliver(func() { c.opts.onSession(sessionOf(first)) })
	}
	go c.run(ws)
	go c.dispatch()
	return c, nil
}

// endpointURL checks url and turns http(s) into ws(s).
func endpointURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("client: %q is not a URL: %v", raw, err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf(`client: %q is not a WebSocket address: use ws://host:port/ws, or wss:// for TLS`, raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf(`client: %q names no host: use ws://host:port/ws`, raw)
	}
	return u.String(), nil
}

// dial opens one connection.
func (c *Conn) dial(ctx context.Context) (*websocket.Conn, error) {
	d := *c.dialer
	d.Subprotocols = c.subprotocols()
	ws, resp, err := d.DialContext(ctx, c.url, c.opts.header)
	if err == nil {
		return ws, nil
	}
	if resp != nil && errors.Is(err, websocket.ErrBadHandshake) {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return nil, &HandshakeError{URL: c.url, StatusCode: resp.StatusCode, Message: strings.TrimSpace(string(body))}
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, fmt.Errorf("client: connecting to %s: %w", c.url, ctxErr)
	}
	return nil, fmt.Errorf("client: cannot connect to %s: %w", c.url, err)
}

// On registers handler for the server's messages whose "op" is op. A
// handler is one of
//
//	func()
//	func(p wszero.Params)
//	func(p T) // T a struct or a pointer to one
//
// and returns nothing or an error, which is logged. The message's keys are
// bound to p by the same rules as on the server: a missing, unknown or
// mistyped key is logged and the handler is not called.
//
// "error" messages that answer no call go to the "error" handler, if
// there is one; func(e *client.ServerError) takes them whole. Messages for
// an op without a handler are logged (or passed to WithUnhandled's
// function). A message that arrives before On is called for its op has
// no handler: register handlers for what the server sends at once with
// WithHandler.
//
// On panics when the handler has another shape, when op is empty or starts
// with "_", or when op already has a handler.
func (c *Conn) On(op string, handler any) {
	where := binding.CallerOutside("github.com/wszero/wszero/client.(*Conn).On")
	c.register("On", newHandler("On", op, handler, where))
}

// newHandler checks a handler for op and prepares its binding; it panics
// with the reason, naming the registering function fn and the place.
func newHandler(fn, op string, h any, where string) *handler {
	err := binding.CheckOp(op, `c.On("news", news)`)
	if err == nil {
		if t := reflect.TypeOf(h); t != nil && t.Kind() == reflect.Func && t.NumIn() > 0 && t.In(0) == serverClientType {
			err = fmt.Errorf("the handler %s takes a *wszero.Client: that is for handlers on the server; "+
				"a handler on the client takes only the message's parameters.\n%s", t, handlerShapes)
		}
	}
	var bh *binding.Handler
	if err == nil {
		bh, err = binding.NewHandler(handlerShape, h)
	}
	if err != nil {
		panic(fmt.Sprintf("client: %s(%q, …) at %s: %v", fn, op, where, err))
	}
	return &handler{Handler: bh, op: op, where: where}
}

// register adds h, panicking if its op has a handler already.
func (c *Conn) register(fn string, h *handler) {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	if old, ok := c.handlers[h.op]; ok {
		panic(fmt.Sprintf("client: %s(%q, …) at %s: %q already has a handler, registered at %s.\n"+
			"Each op has one handler: remove one of them, or give this one another name.", fn, h.op, h.where, h.op, old.where))
	}
	c.handlers[h.op] = h
}

// handlerFor returns the handler for op, or nil.
func (c *Conn) handlerFor(op string) *handler {
	c.hmu.RLock()
	defer c.hmu.RUnlock()
	return c.handlers[op]
}

// handlerOps lists the ops with handlers, sorted, for log lines.
func (c *Conn) handlerOps() []string {
	c.hmu.RLock()
	defer c.hmu.RUnlock()
	return slices.Sorted(maps.Keys(c.handlers))
}

// Send sends the message {"op": op, …params} to the server, which runs its
// handler for op. params is nil, a wszero.Params or other map, or a struct
// that marshals to a JSON object; op wins over an "op" key in params.
//
// Send returns once the message is written, or queued while reconnecting.
// An error the server's handler returns comes back as an "error" message
// (see On); use Call to get it as a value.
func (c *Conn) Send(op string, params any) error {
	data, err := encode(op, params)
	if err != nil {
		return err
	}
	return c.write(data, 0)
}

// Call sends {"op": op, …params} as a call, waits for the server's answer
// and decodes the handler's result into result, a pointer as json.Unmarshal
// takes, or nil to ignore it. params is as for Send.
//
// When the handler returns an error, or the server cannot run it (no
// handler for op, a key missing or misspelt), Call returns a *ServerError
// with the server's message. When ctx ends first, Call returns ctx.Err()
// and forgets the call. When the connection drops before the answer, Call
// returns an error matching ErrConnectionLost; it is not sent again.
func (c *Conn) Call(ctx context.Context, op string, params any, result any) error {
	if result != nil {
		if v := reflect.ValueOf(result); v.Kind() != reflect.Pointer || v.IsNil() {
			return fmt.Errorf("client: Call(%q) decodes the result through a pointer, like &sum, or ignores it with nil; got %T", op, result)
		}
	}
	data, err := encode(op, params)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	call := &pendingCall{op: op, answer: make(chan answer, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.lastRef++
	ref := c.lastRef
	c.pending[ref] = call
	c.mu.Unlock()

	data = append(data[:len(data)-1], `,"`+protocol.KeyRef+`":`...) // data ends with '}'
	data = strconv.AppendInt(data, ref, 10)
	data = append(data, '}')
	if err := c.write(data, ref); err != nil {
		c.forget(ref)
		return err
	}
	select {
	case a := <-call.answer:
		if a.err != nil {
			return a.err
		}
		if result == nil {
			return nil
		}
		if len(a.result) == 0 {
			a.result = json.RawMessage("null")
		}
		if err := json.Unmarshal(a.result, result); err != nil {
			return fmt.Errorf("client: %s answered %s, which does not fit %T: %w", op, binding.DescribeJSON(a.result), result, err)
		}
		return nil
	case <-ctx.Done():
		c.forget(ref)
		return ctx.Err()
	}
}

// encode renders a message, with the client's error words.
func encode(op string, params any) ([]byte, error) {
	if err := binding.CheckSendOp(op); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if p, ok := params.(wszero.Params); ok {
		params = map[string]any(p)
	}
	data, err := binding.EncodeMessage(op, params)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return data, nil
}

// write sends data, a message, or queues it while reconnecting. ref is the
// call's _ref, or 0. In a session, a message written is numbered and kept
// until the server has taken it: should the connection drop meanwhile, it
// is sent again after the resume, and write reports no error.
func (c *Conn) write(data []byte, ref int64) error {
	c.wmu.Lock() // before numbering: the numbers are in the order written
	defer c.wmu.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	ws := c.ws
	if ws == nil { // reconnecting
		defer c.mu.Unlock()
		if len(c.queue) >= c.opts.reconnect.Queue {
			return ErrQueueFull
		}
		c.queue = append(c.queue, outgoing{data: data, ref: ref})
		return nil
	}
	if call := c.pending[ref]; call != nil {
		call.sent = true
	}
	kept := c.sess != nil && c.sess.key != "" && c.opts.reconnect != nil
	if c.sess != nil {
		c.sess.keep(data, ref)
	}
	c.mu.Unlock()
	if err := c.writeLocked(ws, data); err != nil && !kept {
		return err
	}
	return nil
}

// writeLocked writes one text frame; c.wmu is held. A failed write closes
// the connection, so that the reader notices at once.
func (c *Conn) writeLocked(ws *websocket.Conn, data []byte) error {
	_ = ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	err := ws.WriteMessage(websocket.TextMessage, data)
	if err == nil {
		return nil
	}
	ws.Close()
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return &lostError{why: "writing failed: " + err.Error(), cause: err}
}

// forget drops a call that its caller no longer waits for, and its message
// if it is still queued.
func (c *Conn) forget(ref int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, ref)
	for i, m := range c.queue {
		if m.ref == ref {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			break
		}
	}
}

// answerCall hands a call its answer, if it is still waited for.
func (c *Conn) answerCall(ref int64, a answer) {
	c.mu.Lock()
	call := c.pending[ref]
	delete(c.pending, ref)
	c.mu.Unlock()
	if call != nil {
		call.answer <- a // buffered: never blocks
	}
}

// failCalls fails the calls that match: all of them, or only those already
// sent. c.mu is held.
func (c *Conn) failCallsLocked(onlySent bool, errFor func(op string) error) {
	for ref, call := range c.pending {
		if onlySent && !call.sent {
			continue
		}
		delete(c.pending, ref)
		call.answer <- answer{err: errFor(call.op)}
	}
}

// Close closes the connection: it says goodbye to the server, stops
// reconnecting, and fails the calls still waiting with ErrClosed. Handlers
// for messages not yet handled are not run; a handler already running
// finishes, after which Done is closed. Close returns nil, and calling it
// again does nothing.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		if !c.closed { // else the connection has ended already, and c.err says why
			c.closed = true
			c.err = ErrClosed
			c.queue = nil
			c.failCallsLocked(false, func(op string) error { return fmt.Errorf("%w before %q was answered", ErrClosed, op) })
		}
		ws := c.ws
		c.mu.Unlock()
		c.cancel()
		if ws != nil {
			// The reader stops when the server answers the close frame, or
			// when the linger runs out.
			deadline := time.Now().Add(closeLinger)
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline)
			_ = ws.SetReadDeadline(deadline)
		}
		<-c.runDone
	})
	return nil
}

// Done returns a channel that is closed when the Conn has ended for good —
// after Close, or when the connection dropped and WithReconnect is off or
// gave up — and its handlers have stopped.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns nil until Done is closed; then why the Conn ended: ErrClosed
// after Close, or an error matching ErrConnectionLost that says what
// happened (with errors.As, a *websocket.CloseError when the server closed
// the connection).
func (c *Conn) Err() error {
	select {
	case <-c.done:
	default:
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// dispatch runs handlers in arrival order until the Conn ends.
func (c *Conn) dispatch() {
	defer close(c.done)
	defer c.cancel()
	for fn := range c.inbox {
		if c.ctx.Err() != nil {
			continue // closed: what is left is dropped
		}
		fn()
	}
}

// deliver queues fn for the handler goroutine, unless the Conn is closing.
func (c *Conn) deliver(fn func()) {
	select {
	case c.inbox <- fn:
	case <-c.ctx.Done():
	}
}

// runHandler calls h and logs what goes wrong.
func (c *Conn) runHandler(h *handler, arg any) {
	defer func() {
		if v := recover(); v != nil {
			c.opts.log.Error("client: handler panicked", "op", h.op, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	if _, err := h.Call(nil, arg); err != nil {
		c.opts.log.Error("client: handler failed", "op", h.op, "err", err)
	}
}

// runUnhandled passes a message with no handler to WithUnhandled's function.
func (c *Conn) runUnhandled(op string, p wszero.Params) {
	defer func() {
		if v := recover(); v != nil {
			c.opts.log.Error("client: the function for messages without a handler panicked", "op", op, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	c.opts.unhandled(op, p)
}
