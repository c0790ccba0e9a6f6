package redisbroker

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of the options.
const (
	DefaultChannelPrefix = "wszero"               // DefaultChannelPrefix is the start of every channel's name.
	DefaultQueue         = 65536                  // DefaultQueue is how many messages may wait to be published.
	DefaultQueueBytes    = 64 << 20               // DefaultQueueBytes is how many bytes of messages may wait to be published.
	DefaultReconnectWait = 250 * time.Millisecond // DefaultReconnectWait is the pause between attempts to publish while Redis is away.
)

// Option configures Connect.
type Option func(*options)

type options struct {
	log           *slog.Logger
	prefix        string
	queue         int
	queueBytes    int
	reconnectWait time.Duration
	redis         []func(*redis.Options)
	batch         int // messages in one pipeline at most (tests measure 1)
}

// WithLogger sends the broker's log lines to l; nil silences them. The
// default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// WithChannelPrefix puts every channel under prefix instead of "wszero",
// so that several applications can share one Redis. All the nodes of one
// application must use the same prefix. A prefix has no spaces and none
// of Redis's pattern characters (* ? [ ] \), so that "prefix.*" names the
// application's channels in an ACL rule or PSUBSCRIBE.
func WithChannelPrefix(prefix string) Option {
	if prefix == "" || strings.ContainsAny(prefix, " \t\r\n*?[]\\") {
		panic(fmt.Sprintf("redisbroker.WithChannelPrefix(%q): a prefix is a name without spaces or * ? [ ] \\, like \"chat\" or \"acme.chat\"", prefix))
	}
	return func(o *options) { o.prefix = prefix }
}

// WithQueue sets how many messages, and how many bytes of them, may wait
// to be published (DefaultQueue, DefaultQueueBytes): while Redis is slow,
// or away and the broker tries again. Past either, Publish and Signal
// return ErrQueueFull.
func WithQueue(messages, bytes int) Option {
	if messages < 1 || bytes < 1 {
		panic(fmt.Sprintf("redisbroker.WithQueue(%d, %d): the queue must hold at least one message and one byte", messages, bytes))
	}
	return func(o *options) { o.queue, o.queueBytes = messages, bytes }
}

// WithReconnectWait sets the pause between attempts to publish while Redis
// cannot be reached (DefaultReconnectWait).
func WithReconnectWait(d time.Duration) Option {
	if d <= 0 {
		panic(fmt.Sprintf("redisbroker.WithReconnectWait(%v): the pause must be more than 0", d))
	}
	return func(o *options) { o.reconnectWait = d }
}

// WithRedisOptions lets fn change the options that redis.ParseURL made
// from Connect's URL before the client is made: TLS (TLSConfig),
// credentials, timeouts, a Dialer… Whatever fn sets, the broker then sets
// MaxRetries to -1 (a PUBLISH that Redis ran but did not confirm must not
// run twice), PoolSize to 1 and PipelinePoolSize to -1 (one publishing
// connection keeps each node's messages in order), and ClientName to
// "wszero" when fn left it empty.
func WithRedisOptions(fn func(*redis.Options)) Option {
	if fn == nil {
		panic("redisbroker.WithRedisOptions(nil): pass a function")
	}
	return func(o *options) { o.redis = append(o.redis, fn) }
}
