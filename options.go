package wszero

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/wszero/wszero/internal/protocol"
)

// Option configures a Server; pass options to New.
type Option func(*options)

// options holds a server's settings. The defaults are in defaultOptions.
type options struct {
	log            *slog.Logger
	parallel       bool
	maxMessageSize int64
	allowedOrigins []string
	ratePerSecond  float64
	rateBurst      int
	queueMessages  int
	queueBytes     int
	writeTimeout   time.Duration
	pingInterval   time.Duration
	pongTimeout    time.Duration
	static         http.Handler
	staticDir      string // WithStatic's folder; New makes static from it

	maxConns           int
	maxConnsPerIP      int
	trustedProxies     []netip.Prefix
	maxGroupsPerClient int
	handshakeTimeout   time.Duration
	authenticate       func(*http.Request) (any, error)
	guards             map[string][]func(*Client) error // by op
	opGuards           []func(*Client, string) error    // for every op
	broker             Broker                           // WithBroker's; nil: in-process

	resumeWindow      time.Duration // 0: clients cannot resume
	presenceInterval  time.Duration // how often a node says hi to the others
	resumeMessages    int           // per client
	resumeBytes       int           // per client
	resumeServerBytes int64         // for all clients together
}

// The defaults, also listed in the README.
const (
	DefaultMaxMessageSize = 64 << 10         // DefaultMaxMessageSize is the inbound message limit, in bytes.
	DefaultRatePerSecond  = 200              // DefaultRatePerSecond is the sustained inbound messages a client may send each second.
	DefaultRateBurst      = 400              // DefaultRateBurst is how many messages a client may send at once above the rate.
	DefaultQueueMessages  = 1024             // DefaultQueueMessages is how many outbound messages may wait for one client.
	DefaultQueueBytes     = 4 << 20          // DefaultQueueBytes is how many outbound bytes may wait for one client.
	DefaultWriteTimeout   = 10 * time.Second // DefaultWriteTimeout bounds one write to a client.
	DefaultPingInterval   = 20 * time.Second // DefaultPingInterval is how often the server pings each client.
	DefaultPongTimeout    = 30 * time.Second // DefaultPongTimeout is how long a client may stay silent, pongs included, before it is dropped.

	DefaultMaxConnections      = 10000            // DefaultMaxConnections is how many clients may be connected at once.
	DefaultMaxConnectionsPerIP = 1000             // DefaultMaxConnectionsPerIP is how many clients may be connected at once from one address.
	DefaultMaxGroupsPerClient  = 100              // DefaultMaxGroupsPerClient is how many groups one client may be in.
	DefaultHandshakeTimeout    = 10 * time.Second // DefaultHandshakeTimeout bounds reading a request's header and upgrading it.

	DefaultResumeWindow      = 2 * time.Minute // DefaultResumeWindow is how long a client whose connection dropped may come back as itself.
	DefaultResumeMessages    = 512             // DefaultResumeMessages is how many messages the server keeps for one client to resume with.
	DefaultResumeBytes       = 2 << 20         // DefaultResumeBytes is how many bytes of messages the server keeps for one client to resume with.
	DefaultResumeServerBytes = 256 << 20       // DefaultResumeServerBytes is how many bytes of messages the server keeps for all clients together to resume with.
)

func defaultOptions() options {
	return options{
		log:            slog.Default(),
		maxMessageSize: DefaultMaxMessageSize,
		ratePerSecond:  DefaultRatePerSecond,
		rateBurst:      DefaultRateBurst,
		queueMessages:  DefaultQueueMessages,
		queueBytes:     DefaultQueueBytes,
		writeTimeout:   DefaultWriteTimeout,
		pingInterval:   DefaultPingInterval,
		pongTimeout:    DefaultPongTimeout,

		maxConns:           DefaultMaxConnections,
		maxConnsPerIP:      DefaultMaxConnectionsPerIP,
		maxGroupsPerClient: DefaultMaxGroupsPerClient,
		handshakeTimeout:   DefaultHandshakeTimeout,

		resumeWindow:      DefaultResumeWindow,
		presenceInterval:  DefaultPresenceInterval,
		resumeMessages:    DefaultResumeMessages,
		resumeBytes:       DefaultResumeBytes,
		resumeServerBytes: DefaultResumeServerBytes,
	}
}

// WithResumeWindow sets how long a client whose connection dropped (a
// Wi-Fi blip, a laptop lid, a phone changing networks) may reconnect and
// resume its session: it is then the same Client, with the same ID,
// groups, state and Identity, and receives what was sent to it meanwhile,
// once and in order, before anything newer; what it sent that the server
// had not taken is sent again and handled once. Its connect handler does
// not run again, and its disconnect handler runs only when the window
// passes without it (a "client_away" handler runs when it drops, and a
// "client_back" handler when it resumes). The browser and Go clients
// resume by themselves. The default is DefaultResumeWindow (2 minutes);
// 0 turns resuming off, and a dropped client is gone at once.
//
// A client that closes on purpose (a page closed or reloaded, Close on
// either side), or that the server disconnects for breaking a limit on
// what it sends, leaves at once.
func WithResumeWindow(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("wszero.WithResumeWindow(%v): the window cannot be negative; 0 turns resuming off", d))
	}
	return func(o *options) { o.resumeWindow = d }
}

// WithPresenceInterval sets how often a node of a cluster (WithBroker)
// tells the others it is still there (DefaultPresenceInterval, 1 s): a
// node silent for three of its intervals is counted gone at the others'
// next interval (within four), and its members
// leave every group (see Presence). A shorter interval notices a vanished
// node sooner, at the cost of a small signal per interval from every node
// to every other.
func WithPresenceInterval(d time.Duration) Option {
	if d < 10*time.Millisecond {
		panic(fmt.Sprintf("wszero.WithPresenceInterval(%v): the interval must be at least 10ms", d))
	}
	return func(o *options) { o.presenceInterval = d }
}

// WithResumeBuffer bounds what the server keeps so that clients can
// resume: for each client, the messages sent to it that it has not yet
// acknowledged (it does every few messages), at most messages of them
// and bytes in all; and for all clients together, serverBytes. A
// broadcast's frame is kept once, shared by every member, but counts in
// full for each. A client that missed more than was kept is told it was
// not resumed, and starts again as a new client: never half-resumed.
// The defaults are DefaultResumeMessages (512), DefaultResumeBytes
// (2 MiB) and DefaultResumeServerBytes (256 MiB). A resume sends what was
// missed through the send queue, so the per-client limits are at most
// the send queue's (WithSendQueue).
func WithResumeBuffer(messages, bytes int, serverBytes int64) Option {
	if messages <= 0 || bytes <= 0 || serverBytes <= 0 {
		panic(fmt.Sprintf("wszero.WithResumeBuffer(%d, %d, %d): every limit must be more than 0; WithResumeWindow(0) turns resuming off", messages, bytes, serverBytes))
	}
	return func(o *options) { o.resumeMessages, o.resumeBytes, o.resumeServerBytes = messages, bytes, serverBytes }
}

// WithLogger sends the server's log lines to l. WithLogger(nil) silences
// them. The default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			l = slog.New(slog.NewTextHandler(io.Discard, nil))
		}
		o.log = l
	}
}

// WithParallelHandlers runs different clients' handlers at the same time,
// each client's messages still one at a time and in order. Without it, all
// handlers and Every/After callbacks run one at a time on one loop, so
// handlers may share variables freely. With it, shared variables need a
// sync.Mutex, and Every/After callbacks run on their own goroutines.
func WithParallelHandlers() Option {
	return func(o *options) { o.parallel = true }
}

// WithMaxMessageSize sets the largest message a client may send, in bytes.
// A larger one closes the connection with code 1009 and a reason that
// names the limit. The default is DefaultMaxMessageSize (64 KiB).
func WithMaxMessageSize(bytes int64) Option {
	if bytes <= 0 {
		panic(fmt.Sprintf("wszero.WithMaxMessageSize(%d): the limit must be more than 0 bytes", bytes))
	}
	return func(o *options) { o.maxMessageSize = bytes }
}

// WithAllowedOrigins lets pages from other origins connect. By default only
// pages served by the same host may connect (and programs that send no
// Origin header), which stops other web sites from using a visitor's
// browser to talk to the server (cross-site WebSocket hijacking).
//
// A pattern is matched against the page's origin ("https://app.example.com")
// when it contains "://", and against its host and port otherwise
// ("localhost:5173", "*.example.com"); "*" matches within one name and
// allows every origin on its own: use "*" only for a server with nothing
// to protect. "null" allows pages with no origin of their own: a page
// opened from a file, or in a sandboxed frame (any page on the computer
// can be one of those).
func WithAllowedOrigins(patterns ...string) Option {
	for _, p := range patterns {
		if p == "" {
			panic(`wszero.WithAllowedOrigins(""): an empty pattern matches nothing; name a host like "localhost:5173", or "null" for pages opened from a file`)
		}
		if _, err := path.Match(p, ""); err != nil {
			panic(fmt.Sprintf("wszero.WithAllowedOrigins: %q is not a valid pattern: %v", p, err))
		}
	}
	return func(o *options) { o.allowedOrigins = append(o.allowedOrigins, patterns...) }
}

// WithRateLimit sets how many messages a client may send each second, and
// in a burst. A message over the limit is dropped and the client told so;
// a client that has more than burst messages dropped within a second is
// disconnected (close code 1008). perSecond 0 turns the limit off. The
// default is DefaultRatePerSecond with DefaultRateBurst.
func WithRateLimit(perSecond float64, burst int) Option {
	if perSecond < 0 || burst < 1 && perSecond > 0 {
		panic(fmt.Sprintf("wszero.WithRateLimit(%g, %d): use a rate of 0 or more and a burst of at least 1", perSecond, burst))
	}
	return func(o *options) { o.ratePerSecond, o.rateBurst = perSecond, burst }
}

// WithSendQueue bounds what may wait to be written to one client: messages
// and bytes. A client that falls further behind is disconnected (close code
// 1008, "too slow"), and no one else is affected. The default is
// DefaultQueueMessages and DefaultQueueBytes.
func WithSendQueue(messages, bytes int) Option {
	if messages < 1 || bytes < 1 {
		panic(fmt.Sprintf("wszero.WithSendQueue(%d, %d): both limits must be at least 1", messages, bytes))
	}
	return func(o *options) { o.queueMessages, o.queueBytes = messages, bytes }
}

// WithWriteTimeout bounds how long one write to a client may take before
// the client is dropped. The default is DefaultWriteTimeout.
func WithWriteTimeout(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("wszero.WithWriteTimeout(%v): the timeout must be more than 0", d))
	}
	return func(o *options) { o.writeTimeout = d }
}

// WithKeepalive sets how often the server pings each client and how long a
// client may stay silent (pongs included) before it is disconnected and its
// disconnect handler runs. interval 0 turns pings off; timeout 0 lets
// silent clients stay. The defaults are DefaultPingInterval and
// DefaultPongTimeout.
func WithKeepalive(interval, timeout time.Duration) Option {
	if interval < 0 || timeout < 0 || timeout > 0 && interval >= timeout {
		panic(fmt.Sprintf("wszero.WithKeepalive(%v, %v): the interval must be shorter than the timeout", interval, timeout))
	}
	return func(o *options) { o.pingInterval, o.pongTimeout = interval, timeout }
}

// WithStatic serves the files in dir at every path other than the
// WebSocket endpoint and the browser client (/wszero.js, /wszero.mjs,
// /wszero.d.ts), index.html at "/". TypeScript and JSX files (.ts, .tsx,
// .jsx) are bundled into JavaScript when they are requested; a build error
// is logged and shown in the page. RunServer does this with "./static" by
// itself.
func WithStatic(dir string) Option {
	return func(o *options) { o.staticDir, o.static = dir, nil }
}

// WithMaxConnections bounds how many clients may be connected at once;
// upgrades still in progress count too. One more is refused before its
// upgrade with 503 Service Unavailable, a reason in the body, and a log
// line. n 0 means no limit. The default is DefaultMaxConnections (10,000).
func WithMaxConnections(n int) Option {
	if n < 0 {
		panic(fmt.Sprintf("wszero.WithMaxConnections(%d): use 0 for no limit, or a number of connections", n))
	}
	return func(o *options) { o.maxConns = n }
}

// WithMaxConnectionsPerIP bounds how many clients may be connected at once
// from one IP address (an IPv6 client counts by its /64 network, which one
// household or machine usually has to itself). One more is refused before
// its upgrade with 429 Too Many Requests, a reason in the body, and a log
// line. n 0 means no limit. The default is DefaultMaxConnectionsPerIP
// (1,000): a whole school behind one NAT address, every pupil with a few
// tabs open, stays well within it.
//
// Behind a reverse proxy every client seems to come from the proxy's
// address, and the limit becomes a limit on everyone: name the proxy with
// WithTrustedProxies.
func WithMaxConnectionsPerIP(n int) Option {
	if n < 0 {
		panic(fmt.Sprintf("wszero.WithMaxConnectionsPerIP(%d): use 0 for no limit, or a number of connections", n))
	}
	return func(o *options) { o.maxConnsPerIP = n }
}

// WithTrustedProxies names the reverse proxies in front of the server, as
// IP addresses ("10.0.0.7") or networks ("10.0.0.0/8"). For a request that
// comes from one of them, the client's address, which
// WithMaxConnectionsPerIP counts, is taken from the X-Forwarded-For header:
// the rightmost address in it that is not itself a trusted proxy. Without
// this option (the default) X-Forwarded-For is ignored, since any client
// can write it.
func WithTrustedProxies(proxies ...string) Option {
	prefixes := make([]netip.Prefix, 0, len(proxies))
	for _, p := range proxies {
		var pre netip.Prefix
		var err error
		if strings.Contains(p, "/") {
			pre, err = netip.ParsePrefix(p)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(p); err == nil {
				pre = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			}
		}
		if err != nil {
			panic(fmt.Sprintf("wszero.WithTrustedProxies: %q is not an IP address or network (like \"10.0.0.7\" or \"10.0.0.0/8\"): %v", p, err))
		}
		prefixes = append(prefixes, pre.Masked())
	}
	return func(o *options) { o.trustedProxies = append(o.trustedProxies, prefixes...) }
}

// WithMaxGroupsPerClient bounds how many groups one client may be in at
// once. Past it, AddToGroup returns an error that wraps ErrTooManyGroups
// and says the limit, and the server logs a line. n 0 means no limit. The
// default is DefaultMaxGroupsPerClient (100).
func WithMaxGroupsPerClient(n int) Option {
	if n < 0 {
		panic(fmt.Sprintf("wszero.WithMaxGroupsPerClient(%d): use 0 for no limit, or a number of groups", n))
	}
	return func(o *options) { o.maxGroupsPerClient = n }
}

// WithHandshakeTimeout bounds how long a connection may take to send its
// HTTP request's header (after its TLS handshake, which the same bound
// covers) and to be answered with the upgrade. A slower one is closed. The
// header's part applies to the servers that ListenAndServe,
// ListenAndServeTLS, RunServer and RunServerTLS start; a Server mounted in
// your own http.Server follows that server's ReadHeaderTimeout. The default
// is DefaultHandshakeTimeout (10 s).
func WithHandshakeTimeout(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("wszero.WithHandshakeTimeout(%v): the timeout must be more than 0", d))
	}
	return func(o *options) { o.handshakeTimeout = d }
}

// WithAuthenticate checks every WebSocket request before it is upgraded.
// authenticate sees the whole request — its cookies, its headers, a token
// in its query (/ws?token=…) — and returns the identity of whoever is
// connecting, which handlers read with Client.Identity. A nil identity is
// fine: the connection is accepted.
//
// When authenticate returns an error, the connection is refused before the
// upgrade and the server logs a line. An *HTTPError chooses the status and
// the reason (http.StatusForbidden for someone known but not allowed in);
// any other error refuses with 401 Unauthorized, its text as the reason.
// The reason is sent to whoever tried to connect: never put secrets or
// internal details in it. A panic in authenticate refuses with 500 and is
// logged.
//
// authenticate runs on the request's own goroutine, possibly for many
// requests at once, after the origin check and the connection limits.
// Browsers cannot add headers to a WebSocket request: use a cookie, or a
// token in the address given to the browser client's connect.
func WithAuthenticate(authenticate func(r *http.Request) (identity any, err error)) Option {
	if authenticate == nil {
		panic("wszero.WithAuthenticate(nil): give it a function that checks the request")
	}
	return func(o *options) { o.authenticate = authenticate }
}

// WithGuard lets a client's message with op reach its handler only when
// guard returns nil. When guard returns an error, the handler does not run
// and the sender gets an "error" message with the error's text, naming op
// in "for" and answering the call when the message was one (with its
// "_ref"); the server logs a line. For example, only teachers may kick:
//
//	wszero.WithGuard("kick", func(c *wszero.Client) error {
//		if !c.InGroup("teachers") {
//			return errors.New("only teachers may kick")
//		}
//		return nil
//	})
//
// Guards run where the handler would have run — on the handler loop unless
// WithParallelHandlers — just before it, so they see what earlier messages
// did: a client that joins "teachers" in one message may kick in the next.
// A refused message gets the guard's error even when its parameters are
// wrong too: the sender learns that it may not, not how to. Give WithGuard
// more than once, for the same op or others; every guard for an op must
// allow it. The ops "connect", "disconnect", "client_away" and "client_back" come from the server and
// are never guarded.
func WithGuard(op string, guard func(c *Client) error) Option {
	switch {
	case op == "" || strings.HasPrefix(op, protocol.ReservedPrefix) || protocol.IsServerRaised(op):
		panic(fmt.Sprintf("wszero.WithGuard(%q, …): guard an op that clients send, like \"kick\"", op))
	case guard == nil:
		panic(fmt.Sprintf("wszero.WithGuard(%q, nil): give it a function that returns an error to refuse", op))
	}
	return func(o *options) {
		if o.guards == nil {
			o.guards = make(map[string][]func(*Client) error)
		}
		o.guards[op] = append(o.guards[op], guard)
	}
}

// WithOpGuard is WithGuard for every op a client sends: guard gets the op
// and returns an error to refuse it. It runs before the guards that
// WithGuard gives for that op.
func WithOpGuard(guard func(c *Client, op string) error) Option {
	if guard == nil {
		panic("wszero.WithOpGuard(nil): give it a function that returns an error to refuse")
	}
	return func(o *options) { o.opGuards = append(o.opGuards, guard) }
}
