package wszero

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wszero/wszero/internal/logthrottle"
	"github.com/wszero/wszero/internal/protocol"
)

// Params is the parameters of a message: every key but "op" and the keys
// starting with "_". Numbers arrive as float64, lists as []any, objects as
// map[string]any. Use it to send, too: c.Send("score", wszero.Params{"n": 3}).
type Params map[string]any

// Server routes messages from WebSocket clients to handlers and fans
// messages out to clients and groups. It is an http.Handler: the WebSocket
// endpoint is "/ws" under wherever it is mounted.
//
// The zero Server is not usable; make one with New. All methods are safe to
// call from any goroutine.
type Server struct {
	opts     options
	upgrader websocket.Upgrader

	handlersMu sync.Mutex                          // serialises On
	handlers   atomic.Pointer[map[string]*handler] // replaced whole on each On

	mu      sync.RWMutex // guards clients, groups, closing, httpSrvs
	clients map[string]*Client
	groups  map[string]map[*Client]struct{}
	// Snapshots of the members, for broadcasts to range over without the
	// lock; nil (or absent) after a change, rebuilt by the next broadcast.
	allSnap    []*Client
	groupSnaps map[string][]*Client
	closing    bool
	httpSrvs   []*http.Server
	nextSeq    uint64
	keep       keepalive

	conns sync.WaitGroup // one per client, connected or away, done after its disconnect handler

	resumeBytes atomic.Int64 // in every session's log (see WithResumeBuffer)
	away        awayList     // the clients between connections
	relays      relayList    // connections relayed to the nodes that hold their sessions
	loop        handlerLoop
	timer       timers

	admission   admission            // connections counted for the connection limits
	logThrottle logthrottle.Throttle // for log lines a flood could repeat

	taken takenMessages // so that Shutdown handles every message taken before it began

	welcome  bool // serve the welcome page when there is no static folder
	teaching bool // run by RunServer: a handler's panic is shown to its sender

	node      string   // this server's ID in a cluster, the prefix of its clients' IDs there
	broker    Broker   // WithBroker's, or the in-process one
	clustered bool     // WithBroker was given
	presence  presence // the cluster's groups and members

	onServe func(net.Addr) // a test hook: called with the address serve listens on
}

// New returns a Server configured by opts.
func New(opts ...Option) *Server {
	s := &Server{
		opts:    defaultOptions(),
		clients: map[string]*Client{},
		groups:  map[string]map[*Client]struct{}{},

		groupSnaps: map[string][]*Client{},
	}
	for _, o := range opts {
		o(&s.opts)
	}
	if s.opts.staticDir != "" {
		s.useStatic(s.opts.staticDir)
	}
	// What was missed is sent again through the send queue, with room to
	// spare for what comes after.
	s.opts.resumeMessages = min(s.opts.resumeMessages, max(s.opts.queueMessages/2, 1))
	s.opts.resumeBytes = min(s.opts.resumeBytes, max(s.opts.queueBytes/2, 1))
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:   0, // the reader that hijackWrapper makes: bufferedReadSize
		WriteBufferSize:  1024,
		WriteBufferPool:  &sync.Pool{},
		HandshakeTimeout: s.opts.handshakeTimeout,
		Subprotocols:     []string{protocol.SubprotocolJSON},
		CheckOrigin:      s.checkOrigin,
		Error:            s.upgradeError,
	}
	s.loop.init()
	s.initPresence()
	s.startBroker()
	s.startPresence()
	return s
}

var (
	defaultServer     *Server
	defaultServerOnce sync.Once
)

// Default returns the server that the package-level functions (On,
// Broadcast, RunServer, …) use.
func Default() *Server {
	defaultServerOnce.Do(func() { defaultServer = New() })
	return defaultServer
}

// On registers handler for messages whose "op" is op, on the default server.
// See Server.On for the handler shapes. Like Server.On it panics on a
// mistake; called straight from main, as a teaching program does, it
// prints the panic's words, without the goroutine trace that would bury
// them, and exits with status 2.
func On(op string, handler any) {
	if pc, _, _, ok := runtime.Caller(1); ok && runtime.FuncForPC(pc).Name() == "main.main" {
		defer exitOnPanic()
	}
	Default().On(op, handler)
}

// exitOnPanic prints a panic under way and exits with status 2.
func exitOnPanic() {
	if v := recover(); v != nil {
		fmt.Fprintln(os.Stderr, v)
		os.Exit(2)
	}
}

// Broadcast sends {"op": op, …params} to every client of the default server.
func Broadcast(op string, params any) error {
	return Default().Broadcast(op, params)
}

// BroadcastTo sends {"op": op, …params} to every member of group on the
// default server.
func BroadcastTo(group, op string, params any) error {
	return Default().BroadcastTo(group, op, params)
}

// SendTo sends {"op": op, …params} to the client whose ID is clientID,
// wherever it is connected: on this server, or on another node of the
// cluster (WithBroker). params takes the same forms as in Client.Send.
//
// For a client of this server it returns ErrClosed when the client has
// gone. For a client of another node it returns once the message is handed
// to the broker: if that client has gone, the message is dropped there.
func SendTo(clientID, op string, params any) error {
	return Default().SendTo(clientID, op, params)
}

// SendToOne sends {"op": op, …params} to one member of group on the
// default server, the members taking turns. See Server.SendToOne.
func SendToOne(group, op string, params any) error {
	return Default().SendToOne(group, op, params)
}

// OnPresence runs fn on the default server's handler loop for every
// change of every group's members. See Server.OnPresence.
func OnPresence(fn func(PresenceChange)) { Default().OnPresence(fn) }

// Every runs fn every d on the default server's handler loop.
func Every(d time.Duration, fn func()) *Timer { return Default().Every(d, fn) }

// After runs fn once, after d, on the default server's handler loop.
func After(d time.Duration, fn func()) *Timer { return Default().After(d, fn) }

// Do runs fn on the default server's handler loop and returns once it has
// run. See Server.Do.
func Do(fn func()) error { return Default().Do(fn) }

// RunServer serves the default server on port until Ctrl-C (or SIGTERM),
// then shuts down gracefully. The PORT environment variable, when set,
// overrides port. It serves the WebSocket endpoint at /ws and the files of
// the ./static folder (index.html at /), or a welcome page that says how to
// start when there is no such folder. It prints the addresses to open, on
// this computer and from others on the network. A handler that panics
// tells its sender why, for the child at the page. Server.Run does the
// same for a server of the program's own.
//
// When the server cannot start (the port is taken, say), RunServer prints
// one line saying why and what to do, and exits with status 1.
func RunServer(port int) {
	exitOnError(Default().runUntilSignal(port, teachingRun()))
}

// RunServerTLS is RunServer over HTTPS, for pages that need a secure
// context (the camera, the microphone, the clipboard, service workers) when
// other computers of the network open them. The browser client connects
// with wss:// by itself.
//
// With no certificate given, RunServerTLS makes a self-signed one for this
// computer's names and network addresses, keeps it in the user's cache
// folder for the next runs, and prints its fingerprint: browsers warn about
// such a certificate until someone checks the fingerprint and proceeds.
// Set the environment variables WSZERO_TLS_CERT and WSZERO_TLS_KEY to the
// PEM files of a certificate and its key to serve with those instead.
func RunServerTLS(port int) {
	cfg := teachingRun()
	cfg.secure = true
	exitOnError(Default().runUntilSignal(port, cfg))
}

// teachingRun is the configuration of RunServer, called by the function
// that calls teachingRun's caller.
func teachingRun() runConfig {
	cfg := runConfig{out: os.Stdout, teaching: true}
	if _, file, _, ok := runtime.Caller(2); ok {
		cfg.callerDir = filepath.Dir(file)
	}
	return cfg
}

// exitOnError prints err and exits with status 1, unless err is nil.
func exitOnError(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
