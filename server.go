package wszero

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wszero/wszero/internal/protocol"
)

// Clients returns the clients of this server, in the order they first
// connected: those connected, and those away that may still resume (see
// Client.Away). With WithBroker, other nodes' clients are not listed.
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

// removeClient takes c out of the server and out of every group's
// members. c keeps its own list of the groups it was in, for its
// disconnect handler (Client.Groups); nothing reaches it through them.
func (s *Server) removeClient(c *Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clients[c.id] == c {
		delete(s.clients, c.id)
		s.allSnap = nil
	}
	// c.groups changes only under s.mu, which is held: it can be read here
	// without c.mu, and without a copy.
	for g := range c.groups {
		s.leaveGroupLocked(c, g)
	}
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

// httpBodyTimeouts is how many handshake timeouts a whole request, its
// body included, may take: a request that says it has a body and never
// sends it holds its connection no longer (30 s by default). A WebSocket
// connection, once upgraded, has deadlines of its own.
const httpBodyTimeouts = 3

// httpMaxHeaderBytes bounds a request's header, so that slow or huge
// headers from many connections cannot take the server's memory: 64 KiB,
// against net/http's 1 MiB.
const httpMaxHeaderBytes = 64 << 10

// httpIdleTimeout bounds how long the servers that ListenAndServe and
// RunServer start keep an idle HTTP connection (between two requests) open.
const httpIdleTimeout = 2 * time.Minute

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
	return s.serve(l, s, nil)
}

// Serve serves s on the listener l, until Shutdown, which closes l. Like
// http.Server's, it returns http.ErrServerClosed after Shutdown. Serve is
// how a program starts a server without blocking, on a port the system
// chooses:
//
//	l, err := net.Listen("tcp", "127.0.0.1:0")
//	if err != nil {
//		return err
//	}
//	go s.Serve(l)
//	url := "ws://" + l.Addr().String() + "/ws"
func (s *Server) Serve(l net.Listener) error {
	return s.serve(l, s, nil)
}

// ServeTLS is Serve over HTTPS, with the certificate and private key in
// certFile and keyFile, as in ListenAndServeTLS.
func (s *Server) ServeTLS(l net.Listener, certFile, keyFile string) error {
	cert, err := loadCert(certFile, keyFile)
	if err != nil {
		l.Close()
		return err
	}
	return s.serve(l, s, newTLSConfig(cert))
}

// ListenAndServeTLS is ListenAndServe over HTTPS: it listens on the TCP
// address addr (":8443") and serves s with the certificate and private key
// in certFile and keyFile (PEM files; certFile may hold the chain after the
// certificate), until Shutdown, after which it returns
// http.ErrServerClosed. Pages served over HTTPS get a secure context, and
// the browser client connects to them with wss:// by itself.
func (s *Server) ListenAndServeTLS(addr, certFile, keyFile string) error {
	if addr == "" {
		addr = ":https"
	}
	if s.isClosing() {
		return http.ErrServerClosed
	}
	cert, err := loadCert(certFile, keyFile)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.serve(l, s, newTLSConfig(cert))
}

// loadCert loads a certificate and its key from PEM files, saying which
// files when it cannot.
func loadCert(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("wszero: cannot use the certificate %s with the key %s: %v", certFile, keyFile, err)
	}
	return cert, nil
}

// newTLSConfig serves cert, with TLS 1.2 at least.
func newTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// isClosing reports whether Shutdown has begun.
func (s *Server) isClosing() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closing
}

// serve serves handler (s, or an application's mux that routes to s) on an
// open listener, over TLS with tlsConfig unless it is nil, until Shutdown.
func (s *Server) serve(l net.Listener, handler http.Handler, tlsConfig *tls.Config) error {
	srv, err := s.newHTTPServer(handler)
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

// newHTTPServer makes the http.Server that serves handler, for Shutdown to
// shut down with s.
func (s *Server) newHTTPServer(handler http.Handler) (*http.Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, http.ErrServerClosed
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: s.opts.handshakeTimeout, // the TLS handshake too
		ReadTimeout:       s.opts.handshakeTimeout * httpBodyTimeouts,
		MaxHeaderBytes:    httpMaxHeaderBytes,
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
	s.relays.closeAll() // their clients resume elsewhere, or start anew
	// Handle every message the readers took before now, so that their
	// replies, and whatever their handlers send, go out before the goodbye.
	handled := s.taken.close()
	select {
	case <-handled:
	case <-ctx.Done():
	}
	for _, c := range clients {
		c.end(protocol.CloseGoingAway, "the server is shutting down")
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
			c.closeLink()
		}
		// A handler that never returns would hold the rest forever: finish
		// in the background, and return as the context says.
		go finish()
		<-httpDone
		s.presence.stopPresence()
		s.closeTunnels()
		_ = s.closeBroker(ctx)
		return ctx.Err()
	}
	finish()
	s.presence.stopPresence()
	s.closeTunnels()
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
