package wszero

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wszero/wszero/internal/protocol"
	"golang.org/x/time/rate"
)

// Client is one connected browser or program.
//
// A client outlives a dropped connection: a page or Go client that
// reconnects within the resume window (WithResumeWindow) resumes its
// session and is the same Client, with the same ID, groups and state, and
// what was sent to it meanwhile is delivered then. Away reports whether
// it is between connections.
//
// All methods of Client are safe to call from any goroutine, during or after
// the connection. Sending never blocks: frames go to the client's own queue,
// written by its own writer; a client whose queue overflows is disconnected.
type Client struct {
	// Set when the client connects, and never changed.
	id       string
	seq      uint64 // connection order, for stable listings
	server   *Server
	identity any // what WithAuthenticate's function returned

	toldAway     bool            // whether presence last told the client away; s.mu guards it
	identityOnce sync.Once       // identityData is computed once
	identityData json.RawMessage // identity as JSON, for Presence
	pingSlot     uint8           // which of the keepalive's slots pings it
	sessioned    bool            // it speaks the session protocol (protocol.SubprotocolJSON), and numbers its messages

	inLoop atomic.Int32  // its messages waiting for the handler loop (see clientLoopTasks)
	got    atomic.Uint64 // the numbered messages its readers have taken, one reader at a time

	mu       sync.Mutex           // guards what follows, and the link's send queue
	link     *link                // the connection; nil while away
	addr     string               // the address the last connection came from, as Addr tells
	remote   string               // the last connection's remote address, for logs
	left     bool                 // it has left for good: its disconnect handler runs
	resuming bool                 // a new connection is taking it over
	groups   map[string]time.Time // joined, by group
	state    map[string]any
	session  *session // what resuming needs; nil for a plain WebSocket client, which cannot resume
}

// link is one network connection of a client, with its reader and its
// writer. A client that resumes after a blip gets a new link; the old one
// is closed and forgotten.
type link struct {
	server *Server
	c      *Client // set once, before the link's reader runs
	conn   *websocket.Conn
	batch  *batchConn
	ip     string      // as the connection limits count it
	reader readerState // the reader goroutine's own
	send   sendQueue   // guarded by c.mu

	closeOnce  sync.Once
	connClosed chan struct{} // closed once the network connection is closed
	readerGone chan struct{} // closed once the reader has stopped reading
}

// readerState is what a link's reader goroutine keeps from one message
// to the next. Only that goroutine touches it, so it takes no lock.
type readerState struct {
	limiter      *rate.Limiter // nil without a rate limit
	floodWindow  monotime      // start of the second in which dropped is counted
	dropped      int           // messages dropped by the rate limit in that second
	draining     bool          // the reader only waits for the peer's close
	heard        monotime      // when the peer last showed it is alive
	readSet      monotime      // when the read deadline was last set
	credit       int           // messages the rate limit lets through for the time the server kept the reader waiting
	unacked      int           // messages taken since the last _ack told the peer how many
	unackedBytes int           // and their bytes
}

// sendQueue is what waits for a link's writer, and the writer's state.
// Client.mu guards it.
type sendQueue struct {
	frames    []outFrame  // frames waiting for the writer
	bytes     int         // bytes in frames
	writing   bool        // a writer is running
	held      bool        // the reader runs handlers and will write what they queue
	closing   bool        // a close frame is queued; nothing more is accepted
	replaced  bool        // a resume has taken the client over: the link's end is not the client's
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
// It suits limits an application keeps per address. After a resume it is
// the address of the new connection.
func (c *Client) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addr
}

// String returns the client's ID and address, for logs.
func (c *Client) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id + "@" + c.remote
}

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
// written, for good: it cannot resume. Its disconnect handler runs (at
// once when it is away). Close may be called more than once.
func (c *Client) Close() {
	c.end(protocol.CloseNormal, "closed by the server")
}
