// Package wszero is a zero-boilerplate WebSocket framework for pages that
// browsers open.
//
// A whole live app is a few handlers and one call:
//
//	package main
//
//	import "github.com/wszero/wszero"
//
//	func main() {
//		wszero.On("announce", func(c *wszero.Client, p struct{ Text string }) {
//			wszero.Broadcast("announce", wszero.Params{"text": p.Text})
//		})
//		wszero.RunServer(8000)
//	}
//
// Browsers send JSON messages such as {"op": "announce", "text": "hi"}; the
// "op" picks the handler, and the other keys are bound to its parameter
// (a struct, or Params). A missing, misspelt or mistyped key never reaches
// the handler: the sender gets an "error" message that says what to fix.
//
// Applications make their own Server, mount it in any net/http mux and
// choose its limits:
//
//	s := wszero.New(wszero.WithAllowedOrigins("localhost:5173"))
//	s.On("add", func(c *wszero.Client, p struct{ A, B int }) int { return p.A + p.B })
//	http.Handle("/game/", http.StripPrefix("/game", s))
//
// # Concurrency
//
// By default handlers, and the callbacks of Every and After, run one at a
// time on one loop, in the order messages arrived, so they may share plain
// variables without locks. WithParallelHandlers runs different clients in
// parallel instead, each client's messages still in order.
//
// Every exported method of Server and Client is safe to call from any
// goroutine. Sending and broadcasting never block: each client has a
// bounded queue, written by its own writer goroutine, and a client that
// cannot keep up is disconnected rather than slowing anyone else.
//
// # Security
//
// By default only pages served by the server's own host may connect, and
// every limit — message size, rate, send queue, connections in all and from
// one address, groups per client, handshake and idle time — has a default
// that an option changes. WithAuthenticate decides who may connect and
// Client.Identity tells handlers who they are; WithGuard and WithOpGuard
// decide who may send which op. ListenAndServeTLS and RunServerTLS serve
// HTTPS. Never pass text from a client to EvalJS. SECURITY.md in the
// repository has the threat model.
package wszero

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
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

	conns sync.WaitGroup // one per connected client, done after its disconnect handler
	loop  handlerLoop
	timer timers

	admission   admission   // connections counted for the connection limits
	logThrottle logThrottle // for log lines a flood could repeat

	// Messages the readers have taken from clients and not yet handled, so
	// that Shutdown handles every message taken before it began.
	acceptMu sync.RWMutex
	draining bool // Shutdown has begun: readers take no more messages (acceptMu)
	inflight sync.WaitGroup

	welcome  bool // serve the welcome page when there is no static folder
	teaching bool // run by RunServer: a handler's panic is shown to its sender

	node      string // this server's ID in a cluster, the prefix of its clients' IDs there
	broker    Broker // WithBroker's, or the in-process one
	clustered bool   // WithBroker was given

	onServe func(net.Addr) // a test hook: called with the address serve listens on
}

// httpIdleTimeout bounds how long the servers that ListenAndServe and
// RunServer start keep an idle HTTP connection (between two requests) open.
const httpIdleTimeout = 2 * time.Minute

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
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:   0, // the reader that hijackWrapper makes: bufferedReadSize
		WriteBufferSize:  1024,
		WriteBufferPool:  &sync.Pool{},
		HandshakeTimeout: s.opts.handshakeTimeout,
		CheckOrigin:      s.checkOrigin,
		Error:            s.upgradeError,
	}
	s.loop.init()
	s.startBroker()
	return s
}

// useStatic serves the files in dir, bundling TypeScript and JSX on
// request and logging build errors. Call it before serving.
func (s *Server) useStatic(dir string) {
	s.useStaticReporting(dir, func(msg string) { s.logger().Error(msg) })
}

// useStaticReporting is useStatic with build errors sent to report.
func (s *Server) useStaticReporting(dir string, report func(string)) {
	sf, err := newStaticFiles(dir, report)
	if err != nil {
		s.opts.static = http.FileServer(http.Dir(dir))
		return
	}
	s.opts.static = sf
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

// logger is the server's logger.
func (s *Server) logger() *slog.Logger { return s.opts.log }

// Clients returns the clients connected to this server, in the order they
// connected. With WithBroker, other nodes' clients are not listed.
func (s *Server) Clients() []*Client {
	s.mu.RLock()
	cs := make([]*Client, 0, len(s.clients))
	for _, c := range s.clients {
		cs = append(cs, c)
	}
	s.mu.RUnlock()
	sortByArrival(cs)
	return cs
}

// ServeHTTP serves the WebSocket endpoint at "/ws" (any path ending in
// "/ws", so that the server works mounted under a prefix with or without
// http.StripPrefix), the browser client at "/wszero.js", "/wszero.mjs" and
// "/wszero.d.ts" (likewise under a prefix), and the static files or welcome
// page elsewhere. A plain request for the endpoint gets a 400 that says to
// open the page.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // mounted with http.StripPrefix("/game/", s)
	}
	switch {
	case strings.HasSuffix(p, "/ws") && (p == "/ws" || websocket.IsWebSocketUpgrade(r) || s.opts.static == nil):
		s.serveWebSocket(w, r)
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && clientFile(p) != nil:
		clientFile(p).serve(w, r)
	case s.opts.static != nil:
		s.opts.static.ServeHTTP(w, r)
	case s.welcome && p == "/":
		serveWelcome(w)
	default:
		http.NotFound(w, r)
	}
}

// serveWebSocket upgrades the request and starts the client's reader; the
// HTTP handler returns at once, so that net/http's per-request state is
// freed while the connection lives on.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "This is the wszero WebSocket endpoint: open the web page instead, and its script connects here.", http.StatusBadRequest)
		return
	}
	if s.isClosing() {
		http.Error(w, "the server is shutting down", http.StatusServiceUnavailable)
		return
	}
	// The cheap checks first: the origin, then the connection limits, and
	// only then the application's own check.
	if !s.checkOrigin(r) {
		s.upgradeError(w, r, http.StatusForbidden, errors.New("origin not allowed"))
		return
	}
	ip := s.clientIP(r)
	if status, reason := s.admit(ip); status != 0 {
		if status == http.StatusTooManyRequests {
			s.refuse(w, r, status, reason, slog.LevelWarn, "wszero: connection refused: too many from one address", "ip", ip, "limit", s.opts.maxConnsPerIP,
				"fix", "raise wszero.WithMaxConnectionsPerIP; behind a proxy, name it with wszero.WithTrustedProxies")
		} else {
			s.refuse(w, r, status, reason, slog.LevelWarn, "wszero: connection refused: the server is full", "limit", s.opts.maxConns,
				"fix", "raise wszero.WithMaxConnections")
		}
		return
	}
	identity, ok := s.authenticate(w, r)
	if !ok {
		s.release(ip)
		return
	}
	var bc *batchConn
	conn, err := s.upgrader.Upgrade(hijackWrapper{w, &bc, s.opts.writeTimeout}, r, nil)
	if err != nil {
		s.release(ip)
		return // the upgrader has answered the request
	}
	if testHookUpgraded != nil {
		testHookUpgraded()
	}
	c := &Client{
		id:         s.newClientID(),
		server:     s,
		conn:       conn,
		batch:      bc,
		remote:     r.RemoteAddr,
		ip:         ip,
		identity:   identity,
		connClosed: make(chan struct{}),
		readerGone: make(chan struct{}),
	}
	if s.opts.ratePerSecond > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(s.opts.ratePerSecond), s.opts.rateBurst)
	}
	c.pingSlot = s.keep.slotForNewClient()
	registered := s.addClient(c)
	// The 101 response goes out only now: once a client has seen it, it is
	// in the server's list, and no broadcast can miss it. Should the write
	// fail, the reader finds the connection closed, and the client leaves.
	if bc.releaseHandshake() != nil {
		c.closeConn()
	}
	if !registered {
		// Shutdown began during the upgrade: say goodbye at once. No
		// reader runs, so the writer closes without waiting for an answer.
		close(c.readerGone)
		c.closeWith(closeGoingAway, "the server is shutting down")
		go func() {
			<-c.connClosed
			s.release(ip)
		}()
		return
	}
	// A frame that says it is far larger than the limit is refused at once
	// (gorilla closes with 1009, without words): there is no point waiting
	// for bytes that would be thrown away. One a little over the limit is
	// read up to the limit and refused with a reason, by the reader.
	if limit := s.opts.maxMessageSize; limit < 1<<40 {
		conn.SetReadLimit(2*limit + 4<<10)
	}
	c.handleControl()
	s.startPing(c)
	if h := s.handlerFor(opConnect); h != nil {
		s.submit(func() { s.run(c, incoming{h: h}) })
	}
	go c.readLoop()
}

// addClient registers c, unless the server is shutting down.
func (s *Server) addClient(c *Client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.nextSeq++
	c.seq = s.nextSeq
	s.clients[c.id] = c
	s.allSnap = nil
	s.conns.Add(1)
	return true
}

// removeClient takes c out of the server and out of every group.
func (s *Server) removeClient(c *Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clients[c.id] == c {
		delete(s.clients, c.id)
		s.allSnap = nil
	}
	c.mu.Lock()
	groups := c.groups
	c.groups = nil
	c.mu.Unlock()
	for g := range groups {
		s.leaveGroupLocked(c, g)
	}
}

// checkOrigin accepts requests without an Origin (programs), from the same
// host, and from origins matching WithAllowedOrigins.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, p := range s.opts.allowedOrigins {
		subject := u.Host
		if strings.Contains(p, "://") {
			subject = origin
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(subject)); ok {
			return true
		}
	}
	s.logThrottled(slog.LevelWarn, "wszero: connection refused: its page comes from another origin", "origin", origin, "host", r.Host,
		"fix", "allow it with wszero.WithAllowedOrigins")
	return false
}

// upgradeError answers a failed upgrade in words.
func (s *Server) upgradeError(w http.ResponseWriter, r *http.Request, status int, reason error) {
	msg := reason.Error()
	if status == http.StatusForbidden {
		msg = fmt.Sprintf("This server does not accept WebSocket connections from pages at %s. "+
			"If that page is yours, allow it with wszero.WithAllowedOrigins(%q).", r.Header.Get("Origin"), originHost(r.Header.Get("Origin")))
	}
	http.Error(w, msg, status)
}

func originHost(origin string) string {
	if u, err := url.Parse(origin); err == nil && u.Host != "" {
		return u.Host
	}
	return origin
}

// testHookUpgraded, when a test sets it, runs between the upgrade and the
// client's registration.
var testHookUpgraded func()

// hijackWrapper hands the upgrader a batchConn in place of the raw
// connection, so that the writer can merge frames into single writes.
type hijackWrapper struct {
	http.ResponseWriter
	out          **batchConn
	writeTimeout time.Duration
}

// Hijack takes over the connection, wrapped.
func (h hijackWrapper) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("wszero: the ResponseWriter cannot be hijacked; mount the server in a plain net/http server")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	bc := newBatchConn(conn, rw.Reader, h.writeTimeout)
	bc.holding = true // the upgrader's 101 waits for the client to be registered
	*h.out = bc
	if bc.br == nil {
		return bc, rw, nil
	}
	// The upgrader takes a hijacked reader of more than 256 bytes as the
	// connection's own (ReadBufferSize is 0).
	return bc, bufio.NewReadWriter(bc.br, rw.Writer), nil
}

// ListenAndServe listens on the TCP address addr (":8000") and serves s,
// until Shutdown. Like http.Server's, it returns http.ErrServerClosed after
// Shutdown.
func (s *Server) ListenAndServe(addr string) error {
	if addr == "" {
		addr = ":http"
	}
	if s.isClosing() {
		return http.ErrServerClosed
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.serve(l, nil)
}

// isClosing reports whether Shutdown has begun.
func (s *Server) isClosing() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closing
}

// serve serves s on an open listener, over TLS with tlsConfig unless it is
// nil, until Shutdown.
func (s *Server) serve(l net.Listener, tlsConfig *tls.Config) error {
	srv, err := s.newHTTPServer()
	if err != nil {
		l.Close()
		return err
	}
	if s.onServe != nil {
		s.onServe(l.Addr())
	}
	if tlsConfig != nil {
		// ServeTLS also offers HTTP/2 for the page's files. Browsers still
		// open the WebSocket over HTTP/1.1: net/http does not advertise
		// WebSockets over HTTP/2 (RFC 8441) unless GODEBUG=http2xconnect=1.
		srv.TLSConfig = tlsConfig
		return srv.ServeTLS(l, "", "")
	}
	return srv.Serve(l)
}

func (s *Server) newHTTPServer() (*http.Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, http.ErrServerClosed
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.opts.handshakeTimeout, // the TLS handshake too
		IdleTimeout:       httpIdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.opts.log.Handler(), slog.LevelWarn),
	}
	s.httpSrvs = append(s.httpSrvs, srv)
	return srv, nil
}

// Shutdown stops the server gracefully: it stops accepting connections and
// timers, runs the handlers of every message already taken from a client
// (messages that arrive after it began are dropped), writes what is queued
// for each client, replies included, closes every connection with code
// 1001 ("going away"), waits for the disconnect handlers, and stops the
// handler loop. If ctx ends first, the remaining connections are closed at
// once and ctx's error is returned. Last, it closes the broker
// (WithBroker), which sends what is still queued for other nodes. A server
// cannot be restarted; calling Shutdown again waits for the first call to
// finish.
//
// Do not call Shutdown from a handler or an Every/After callback: it waits
// for the disconnect handlers, which run after the calling handler.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	already := s.closing
	s.closing = true
	srvs := s.httpSrvs
	clients := make([]*Client, 0, len(s.clients))
	for _, c := range s.clients {
		clients = append(clients, c)
	}
	s.mu.Unlock()
	if already {
		<-s.loop.done
		return nil
	}
	// The HTTP servers stop listening now and finish their requests while
	// the WebSocket clients are said goodbye to: net/http may wait seconds
	// for a connection a browser opened in advance and never used, and the
	// pages must not wait for that.
	httpDone := make(chan error, 1)
	go func() { httpDone <- shutdownHTTP(ctx, srvs) }()
	s.timer.stopAll()
	s.stopPinging()
	// Handle every message the readers took before now, so that their
	// replies, and whatever their handlers send, go out before the goodbye.
	s.acceptMu.Lock()
	s.draining = true
	s.acceptMu.Unlock()
	handled := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(handled)
	}()
	select {
	case <-handled:
	case <-ctx.Done():
	}
	for _, c := range clients {
		c.closeWith(closeGoingAway, "the server is shutting down")
	}
	allGone := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(allGone)
	}()
	finish := func() {
		<-allGone
		s.loop.stop()
		<-handled // the readers have given up on what they still held
	}
	select {
	case <-allGone:
	case <-ctx.Done():
		for _, c := range clients {
			c.closeConn()
		}
		// A handler that never returns would hold the rest forever: finish
		// in the background, and return as the context says.
		go finish()
		<-httpDone
		_ = s.closeBroker(ctx)
		return ctx.Err()
	}
	finish()
	// What the disconnect handlers published goes out before the broker
	// lets go of its connection.
	brokerErr := s.closeBroker(ctx)
	// Every WebSocket client is gone; what HTTP still holds is a request in
	// progress or a connection opened and never used: allow it a moment.
	var err error
	select {
	case err = <-httpDone:
	case <-time.After(httpLinger):
		closeHTTP(srvs)
		err = <-httpDone
	}
	if err == nil {
		err = brokerErr
	}
	return err
}

// httpLinger is how long Shutdown lets plain HTTP connections finish after
// every WebSocket client has gone.
const httpLinger = time.Second

// shutdownHTTP shuts the HTTP servers down gracefully, closing them at once
// when ctx ends.
func shutdownHTTP(ctx context.Context, srvs []*http.Server) error {
	var err error
	for _, srv := range srvs {
		if e := srv.Shutdown(ctx); e != nil {
			srv.Close() // ctx ended: drop the HTTP connections still busy
			if err == nil {
				err = e
			}
		}
	}
	return err
}

// closeHTTP closes the HTTP servers and their connections at once.
func closeHTTP(srvs []*http.Server) {
	for _, srv := range srvs {
		srv.Close()
	}
}

// accept reports whether a message a reader has just read is taken: after
// Shutdown has begun, none is. A taken message is counted until handOver's
// task has run, and Shutdown waits for the count to fall to zero.
func (s *Server) accept() bool {
	s.acceptMu.RLock()
	defer s.acceptMu.RUnlock()
	if s.draining {
		return false
	}
	s.inflight.Add(1)
	return true
}

// handOver runs, on the handler loop, in's handler or task, for a message
// that accept took from c (see messageTask). When the loop is idle, c's
// reader runs it itself, with nothing allocated for it, and writes what it
// sends to c (holdWrites); what is queued meanwhile goes to a goroutine of
// its own, so that no reader is kept from its own client for long.
func (s *Server) handOver(c *Client, in incoming, task func()) {
	if task == nil && in.h == nil {
		s.inflight.Done() // nothing to do
		return
	}
	if s.opts.parallel { // on the reader, which keeps the client's order
		s.runMessage(c, in, task)
		s.inflight.Done()
		return
	}
	switch s.loop.claim() {
	case claimed:
		c.holdWrites()
		s.runMessage(c, in, task)
		s.inflight.Done()
		s.loop.release()
		c.releaseWrites()
		return
	case claimStopped:
		s.inflight.Done() // the message is dropped
		return
	}
	if !s.submit(func() {
		defer s.inflight.Done()
		s.runMessage(c, in, task)
	}) {
		s.inflight.Done() // the loop has stopped: the message is dropped
	}
}

// runMessage runs task, or else in's handler.
func (s *Server) runMessage(c *Client, in incoming, task func()) {
	if task != nil {
		task()
		return
	}
	s.dispatch(c, in)
}
