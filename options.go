package wszero

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"time"
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
	}
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
// to protect.
func WithAllowedOrigins(patterns ...string) Option {
	for _, p := range patterns {
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
