package wszero

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wszero/wszero/internal/protocol"
	"golang.org/x/time/rate"
)

// Client is one connected browser or program.
//
// All methods of Client are safe to call from any goroutine, during or after
// the connection. Sending never blocks: frames go to the client's own queue,
// written by its own writer; a client whose queue overflows is disconnected.
type Client struct {
	// Set when the client connects, and never changed.
	id       string
	seq      uint64 // connection order, for stable listings
	server   *Server
	conn     *websocket.Conn
	batch    *batchConn
	remote   string
	ip       string // as the connection limits count it
	identity any    // what WithAuthenticate's function returned
	pingSlot uint8  // which of the keepalive's slots pings it

	reader readerState  // the reader goroutine's own
	inLoop atomic.Int32 // its messages waiting for the handler loop (see clientLoopTasks)

	mu     sync.Mutex // guards send, groups and state
	send   sendQueue
	groups map[string]struct{}
	state  map[string]any

	closeOnce  sync.Once
	connClosed chan struct{} // closed once the network connection is closed
	readerGone chan struct{} // closed once the reader has stopped reading
}

// readerState is what a client's reader goroutine keeps from one message
// to the next. Only that goroutine touches it, so it takes no lock.
type readerState struct {
	limiter     *rate.Limiter // nil without a rate limit
	floodWindow monotime      // start of the second in which dropped is counted
	dropped     int           // messages dropped by the rate limit in that second
	draining    bool          // the reader only waits for the peer's close
	heard       monotime      // when the peer last showed it is alive
	readSet     monotime      // when the read deadline was last set
	credit      int           // messages the rate limit lets through for the time the server kept the reader waiting
}

// sendQueue is what waits for a client's writer, and the writer's state.
// Client.mu guards it.
type sendQueue struct {
	frames    []outFrame  // frames waiting for the writer
	bytes     int         // bytes in frames
	writing   bool        // a writer is running
	held      bool        // the reader runs handlers and will write what they queue
	closing   bool        // a close frame is queued; nothing more is accepted
	hardClose *time.Timer // closes the connection when the close frame cannot be written in time
}

// newClientID returns a random ID, unique across servers in practice.
func newClientID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("wszero: no randomness for client IDs: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ID returns the client's unique ID, a short random string; with WithBroker,
// "node.random", unique across the cluster and naming the client's node.
func (c *Client) ID() string { return c.id }

// Addr returns the address the client connected from, as the connection
// limits count it: the peer's IP address, or, behind a proxy named by
// WithTrustedProxies, the client's; an IPv6 address as its /64 network.
// It suits limits an application keeps per address.
func (c *Client) Addr() string { return c.ip }

// String returns the client's ID and address, for logs.
func (c *Client) String() string { return c.id + "@" + c.remote }

// Identity returns what the WithAuthenticate function returned for this
// client's request, or nil without WithAuthenticate. It never changes.
func (c *Client) Identity() any { return c.identity }

// Send sends the message {"op": op, …params} to this client.
// params is nil, a Params or map, or a struct that marshals to a JSON object;
// op wins over an "op" key in params. Send returns ErrClosed once the
// client has gone.
func (c *Client) Send(op string, params any) error {
	data, err := c.server.encode(op, params)
	if err != nil {
		return err
	}
	return c.enqueue(outFrame{kind: frameText, data: data})
}

// EvalJS asks the browser to run script (the "eval_js" op). It is meant for
// teaching: never put text that came from another client into script.
func (c *Client) EvalJS(script string) error {
	return c.Send(protocol.OpEvalJS, Params{protocol.KeyScript: script})
}

// Set stores a value under key for this client; Get returns it.
func (c *Client) Set(key string, value any) {
	c.mu.Lock()
	if c.state == nil {
		c.state = make(map[string]any)
	}
	c.state[key] = value
	c.mu.Unlock()
}

// Get returns the value Set stored under key, or nil.
func (c *Client) Get(key string) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state[key]
}

// InGroup reports whether the client is in group; once it has
// disconnected, whether it was when it left, as Groups tells.
func (c *Client) InGroup(group string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, in := c.groups[group]
	return in
}

// Close disconnects the client after the messages already sent to it are
// written. Its disconnect handler runs. Close may be called more than once.
func (c *Client) Close() {
	c.closeWith(protocol.CloseNormal, "closed by the server")
}
