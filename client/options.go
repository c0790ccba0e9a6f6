package client

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/internal/binding"
)

// Option configures a Conn; pass options to Dial.
type Option func(*options)

// options holds a Conn's settings.
type options struct {
	header      http.Header
	tls         *tls.Config
	log         *slog.Logger
	reconnect   *Reconnect // nil: off
	handlers    []*handler
	unhandled   func(op string, p wszero.Params)
	onReconnect func()
	onSession   func(Session)
	maxMessage  int64         // bytes, in one message from the server
	pingEvery   time.Duration // the ping interval to expect until the server says its own
}

// DefaultMaxMessageSize is the largest message a Conn takes from its
// server, in bytes: as large as a server's send queue holds by default.
const DefaultMaxMessageSize = 4 << 20

func defaultOptions() options {
	return options{header: http.Header{}, log: slog.Default(), maxMessage: DefaultMaxMessageSize, pingEvery: wszero.DefaultPingInterval}
}

// WithKeepalive sets the ping interval the Conn expects from its server
// until the server's first _ping says its own (default
// wszero.DefaultPingInterval, 20 s): a server silent for one and a half
// times that, from the moment of connecting, is taken for gone. Give the
// interval the server was given with wszero.WithKeepalive.
func WithKeepalive(interval time.Duration) Option {
	if interval <= 0 {
		panic(fmt.Sprintf("client.WithKeepalive(%v): give an interval above 0, like 20 * time.Second", interval))
	}
	return func(o *options) { o.pingEvery = interval }
}

// WithMaxMessageSize sets the largest message the Conn takes from its
// server, in bytes (default DefaultMaxMessageSize, 4 MiB): a server that
// announces a larger one loses the connection (with close code 1009)
// before the client reads it, whatever size it claims.
func WithMaxMessageSize(bytes int64) Option {
	if bytes <= 0 {
		panic(fmt.Sprintf("client.WithMaxMessageSize(%d): give a size above 0, like 1 << 20 for 1 MiB", bytes))
	}
	return func(o *options) { o.maxMessage = bytes }
}

// WithHeader adds a header to the request that opens the connection (and
// every reconnection): an auth token, a cookie, or an Origin for a server
// that checks it.
//
//	client.WithHeader("Authorization", "Bearer "+token)
//	client.WithHeader("Origin", "https://app.example.com")
func WithHeader(key, value string) Option {
	return func(o *options) { o.header.Add(key, value) }
}

// WithTLSConfig sets the TLS configuration for wss:// addresses: the root
// certificates to trust, a client certificate, the server name. The default
// is Go's, which trusts the system's roots.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(o *options) { o.tls = cfg }
}

// WithLogger sends the client's log lines (messages no handler takes,
// handler errors, reconnections) to l. WithLogger(nil) silences them. The
// default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			l = slog.New(slog.NewTextHandler(io.Discard, nil))
		}
		o.log = l
	}
}

// Reconnect configures WithReconnect. Its zero value is the browser
// client's behaviour: delays from a quarter of a second doubling up to ten
// seconds, for ever, and up to 1,000 messages kept while disconnected.
type Reconnect struct {
	MinDelay time.Duration // the first delay; default 250ms
	MaxDelay time.Duration // the longest delay; default 10s
	Attempts int           // attempts in a row before giving up; 0 never gives up
	Queue    int           // messages Send and Call may queue while disconnected; default 1000
}

// Defaults for Reconnect's zero fields.
const (
	DefaultMinDelay = 250 * time.Millisecond // DefaultMinDelay is the first delay before reconnecting.
	DefaultMaxDelay = 10 * time.Second       // DefaultMaxDelay caps the delay before reconnecting.
	DefaultQueue    = 1000                   // DefaultQueue is how many messages may wait while disconnected.
)

// WithReconnect makes the Conn reconnect when the connection drops, after a
// delay that doubles from r.MinDelay up to r.MaxDelay, with jitter, so that
// many clients of a restarted server do not all come back at once. It is
// off by default: without it, the Conn ends when the connection does.
//
// While reconnecting, the Conn stays usable: handlers stay registered, Send
// and Call queue their messages (up to r.Queue, then they return
// ErrQueueFull), and the queue is sent, in order, once the connection is
// back. A message is sent at most once: calls whose message was already
// sent when the connection dropped are answered after it.
//
// A wszero server resumes the session of a client that comes back within
// its resume window (wszero.WithResumeWindow, 2 minutes by default): it is
// the same client there, with its ID, groups and state; what the server
// sent meanwhile arrives once, in order, before anything newer; and what
// this Conn sent that the server had not taken is sent again, and handled
// once. When the session cannot be resumed (the window passed, the server
// restarted), the server sees a new client, calls already sent fail with
// an error matching ErrConnectionLost, since the server may have run them,
// and WithOnSession says why: WithOnReconnect is the place to rebuild the
// state the old client had, such as its groups.
//
// Done is closed only when Close is called, or after r.Attempts failed
// attempts in a row.
func WithReconnect(r Reconnect) Option {
	if r.MinDelay < 0 || r.MaxDelay < 0 || r.Attempts < 0 || r.Queue < 0 {
		panic(fmt.Sprintf("client.WithReconnect(%+v): the delays, attempts and queue cannot be negative", r))
	}
	if r.MinDelay == 0 {
		r.MinDelay = DefaultMinDelay
	}
	if r.MaxDelay == 0 {
		r.MaxDelay = max(DefaultMaxDelay, r.MinDelay)
	}
	if r.MaxDelay < r.MinDelay {
		panic(fmt.Sprintf("client.WithReconnect: MaxDelay %v is shorter than MinDelay %v", r.MaxDelay, r.MinDelay))
	}
	if r.Queue == 0 {
		r.Queue = DefaultQueue
	}
	return func(o *options) { o.reconnect = &r }
}

// delay is how long to wait before the attempt-th attempt (from 1): the
// doubled delay, capped, of which a random half is taken off.
func (r *Reconnect) delay(attempt int) time.Duration {
	d := r.MaxDelay
	if shift := attempt - 1; shift < 32 && r.MinDelay<<shift < r.MaxDelay {
		d = r.MinDelay << shift
	}
	return d/2 + rand.N(d/2+1)
}

// WithOnReconnect runs fn after each reconnection, once the messages queued
// while disconnected have been sent, on the goroutine that runs handlers
// (in order with them). fn may Send and Call: to join the groups again,
// say, or fetch what was missed.
func WithOnReconnect(fn func()) Option {
	return func(o *options) { o.onReconnect = fn }
}

// WithOnSession runs fn after every connection, the first included, with
// what the server said about the session: the client's ID, and after a
// reconnection whether it resumed (the same client, with what it missed
// sent again) or not (a new client: why says why, and calls sent before
// the drop have failed). It runs on the goroutine that runs handlers,
// before the handlers of the connection's messages, and before
// WithOnReconnect's function.
func WithOnSession(fn func(Session)) Option {
	return func(o *options) { o.onSession = fn }
}

// WithHandler registers handler for op before the connection opens, as On
// does afterwards: use it for messages the server may send at once, from
// its "connect" handler, which could otherwise arrive before On is called.
// It panics as On does.
func WithHandler(op string, handler any) Option {
	where := binding.CallerOutside("github.com/wszero/wszero/client.WithHandler")
	h := newHandler("WithHandler", op, handler, where)
	return func(o *options) { o.handlers = append(o.handlers, h) }
}

// WithUnhandled passes every message whose op has no handler to fn, on the
// goroutine that runs handlers, in order with them, instead of logging it.
// That includes "error" messages that answer no call, when no "error"
// handler is registered. p holds the message's keys but "op" and those
// starting with "_". wszerotest records messages this way.
func WithUnhandled(fn func(op string, p wszero.Params)) Option {
	return func(o *options) { o.unhandled = fn }
}
