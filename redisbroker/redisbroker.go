// Package redisbroker spreads a wszero server over several processes or
// machines through Redis pub/sub (https://redis.io): Broadcast,
// BroadcastTo, SendTo, SendToOne and Presence reach the clients of every
// server connected to the same Redis.
//
//	b, err := redisbroker.Connect("redis://127.0.0.1:6379")
//	if err != nil {
//		log.Fatal(err)
//	}
//	s := wszero.New(wszero.WithBroker(b))
//
// Redis stores nothing for it: it only passes messages on, so one Redis
// (any persistence setting; tested with Redis 7.0) can serve it beside an
// application's own data.
//
// # Channels
//
// Under a prefix ("wszero" by default, WithChannelPrefix), each node
// subscribes to
//
//	wszero.all           broadcasts, and signals to every node
//	wszero.n.<node>      sends to its own clients (SendTo, SendToOne),
//	                     and signals to it alone
//	wszero.g.<group>     a group's broadcasts, only while the group has
//	                     members on this node (<group> is the name in
//	                     unpadded base64url, so any name makes a channel
//	                     without Redis's pattern characters)
//
// The broker reads and writes no keys: an ACL user with the pub/sub and
// connection commands and the prefix's channels is enough,
//
//	ACL SETUSER chat on >password +@pubsub +@connection &wszero.*
//
// and Connect's URL then names it: "redis://chat:password@host:6379".
//
// # Messages
//
// Redis pub/sub carries a channel and a payload, no headers, so every
// payload starts with a small binary envelope:
//
//	byte 0       the kind: 'F', a frame for clients; 'S', a signal for the node
//	byte 1       n, the length of the sending node's ID (1 to 64)
//	n bytes      the sending node's ID
//	for an 'F':  the client's ID (SendTo, SendToOne), then the group's
//	             name (BroadcastTo, SendToOne), each after its length as
//	             an unsigned varint (encoding/binary), 0 when absent
//	the rest     the frame, as the clients receive it, or the signal
//
// A node drops a message whose first byte it does not know (a node of a
// later version, or another program on the channel) and logs it.
//
// # Order, echo and faults
//
// One goroutine publishes, in the order the server handed the messages
// over, on one connection, many messages to a round trip (a pipeline);
// every subscription is on one pub/sub connection, read by one goroutine.
// Redis keeps the order of what one connection publishes on every
// subscriber's connection, so what one node publishes reaches each other
// node in order, whatever its channel.
//
// A node delivers its own broadcasts to its own clients directly, before
// publishing: local delivery never waits for Redis and goes on while it is
// away. Redis sends a node's publications back to the node when it
// subscribes to the channel too (it has no way to say "not to me"), and the
// node drops what carries its own ID.
//
// Publishing never blocks the server: messages wait in a bounded queue
// (WithQueue). While Redis cannot be reached the publisher holds them and
// tries again every 250 ms (WithReconnectWait), in order; when the queue is
// full, Publish and Signal return ErrQueueFull and the message does not
// reach other nodes. A publication Redis may have run without confirming
// it (the connection broke on the way) is not sent again, so none arrives
// twice: it may be lost. The pub/sub connection reconnects by itself, for
// ever, and go-redis subscribes it again to every channel it had; what
// other nodes published while it was away does not reach it (pub/sub is at
// most once). A lost connection and its return are logged.
//
// Subscribing takes a round trip: the first member of a group on a node
// receives other nodes' broadcasts to the group once Redis has the
// subscription. The publisher makes the subscription, and waits until Redis
// confirms it, before it publishes anything the server queued after the
// change, so that the server's presence signal of a new member never
// reaches another node before the subscription reaches Redis. Redis closes a subscriber that falls 32 MiB behind
// (client-output-buffer-limit pubsub, in redis.conf); the broker then
// reconnects, and what was in between is lost.
package redisbroker

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	neturl "net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wszero/wszero"
	"github.com/wszero/wszero/internal/logthrottle"
)

const (
	maxBatch      = 512             // messages in one pipeline at most
	maxBatchBytes = 1 << 20         // bytes in one pipeline, about, at most
	deliverBuffer = 4096            // messages received and not yet delivered
	connectWait   = 5 * time.Second // how long Connect waits for Redis
	startWait     = time.Second     // how long Start waits for Redis to have the subscriptions
	subscribeWait = 5 * time.Second // how long a (un)subscription may take to reach Redis
	closeWait     = 2 * time.Second // how long Close waits for Redis when its context has no deadline
)

// ErrQueueFull is returned by Publish and Signal when the publishing queue
// is full: Redis has been away or slow for longer than the queue can hold.
var ErrQueueFull = errors.New("redisbroker: the publishing queue is full; Redis is away or too slow")

// ErrClosed is returned by Publish and Signal once the broker is closed.
var ErrClosed = errors.New("redisbroker: the broker is closed")

// Broker is a wszero.Broker on Redis pub/sub. Pass it to wszero.WithBroker:
// the wszero server starts it and closes it on Shutdown. A Broker serves
// one server.
//
// Its methods are safe to call from any goroutine, and none waits for
// Redis but Connect, Start and Close.
type Broker struct {
	rdb      *redis.Client
	opts     options
	log      *slog.Logger
	addr     string // the URL without its password, for logs
	throttle logthrottle.Throttle

	node    wszero.Node
	nodeID  string
	started atomic.Bool // Start has set node and nodeID
	closing atomic.Bool // Close has begun
	down    atomic.Bool // Redis could not be reached, and has not been since

	out     chan outMsg   // waiting to be published
	queued  atomic.Int64  // bytes in out and in the batch being published
	dropped atomic.Int64  // messages Close could not publish
	stop    chan struct{} // closed by Close: the publisher flushes and ends
	stopCtx context.Context
	cancel  context.CancelFunc // ends stopCtx, with stop
	done    chan struct{}      // closed when Close has finished
	wg      sync.WaitGroup

	ps        *redis.PubSub
	delivered chan struct{} // closed when deliverLoop has ended

	mu     sync.Mutex
	dirty  map[string]struct{} // groups whose subscription to check
	kick   chan struct{}       // something is dirty
	gen    atomic.Uint64       // GroupChanged calls so far
	synced uint64              // the gen up to which the publisher has (un)subscribed; its own

	subsMu sync.Mutex
	subs   map[string]struct{} // groups subscribed to, while they have local members

	stateMu     sync.Mutex
	confirmed   map[string]uint64 // channels Redis has subscribed the current connection to: when (seq)
	seq         uint64            // confirmations so far
	connections int               // pub/sub connections Redis has confirmed subscriptions on
	changed     chan struct{}     // closed, and made anew, at each confirmation
}

// outMsg is a message waiting to be published.
type outMsg struct {
	channel string
	data    []byte
	gen     uint64 // GroupChanged calls before it: the subscriptions to make first
}

// Connect connects to the Redis server at url, a redis:// or rediss://
// URL as redis.ParseURL reads it ("redis://user:password@host:6379/0"),
// and returns a Broker for wszero.WithBroker. It fails if Redis cannot be
// reached now; once connected, the broker reconnects by itself for ever.
func Connect(url string, opts ...Option) (*Broker, error) {
	b := &Broker{
		opts: options{
			log:           slog.Default(),
			prefix:        DefaultChannelPrefix,
			queue:         DefaultQueue,
			queueBytes:    DefaultQueueBytes,
			reconnectWait: DefaultReconnectWait,
			batch:         maxBatch,
		},
		addr:      redact(url),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		delivered: make(chan struct{}),
		dirty:     map[string]struct{}{},
		kick:      make(chan struct{}, 1),
		subs:      map[string]struct{}{},
		confirmed: map[string]uint64{},
		changed:   make(chan struct{}),
	}
	for _, o := range opts {
		o(&b.opts)
	}
	b.log = b.opts.log
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.out = make(chan outMsg, b.opts.queue)
	ro, err := redis.ParseURL(url)
	if err != nil {
		if ue := (*neturl.Error)(nil); errors.As(err, &ue) {
			err = ue.Err // without the URL, and its password
		}
		return nil, fmt.Errorf("redisbroker: %s is not a Redis URL: %w", b.addr, err)
	}
	for _, fn := range b.opts.redis {
		fn(ro)
	}
	ro.MaxRetries = -1
	ro.PoolSize = 1
	ro.PipelinePoolSize = -1
	if ro.ClientName == "" {
		ro.ClientName = "wszero"
	}
	b.stopCtx, b.cancel = context.WithCancel(context.Background())
	b.rdb = redis.NewClient(ro)
	b.rdb.AddHook(dialHook{b})
	ctx, cancel := context.WithTimeout(context.Background(), connectWait)
	defer cancel()
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		b.cancel()
		_ = b.rdb.Close()
		return nil, fmt.Errorf("redisbroker: cannot connect to Redis at %s: %w", b.addr, err)
	}
	return b, nil
}

// Client returns the broker's Redis client, for its status and statistics
// (PoolStats). Its one connection is the broker's publisher: use a client
// of your own for your data.
func (b *Broker) Client() *redis.Client { return b.rdb }

// Start subscribes to broadcasts and to the node's own channel, and starts
// delivering and publishing. It waits until Redis has the subscriptions,
// for at most 1 s; when Redis is away, they are made once it is back. The
// wszero server calls it, from New.
func (b *Broker) Start(node wszero.Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), startWait)
	defer cancel()
	if err := b.subscribe(ctx, node); err != nil {
		return err
	}
	// Other nodes reach this one once Redis has the subscriptions; wait
	// for that a moment, not for ever: Redis may be slow or away.
	all, own := b.channelAll(), b.channelNode(b.nodeID)
	_ = b.waitState(ctx, func() bool { return b.confirmed[all] > 0 && b.confirmed[own] > 0 })
	return nil
}

// subscribe is Start's first part: it subscribes and starts the goroutines.
func (b *Broker) subscribe(ctx context.Context, node wszero.Node) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.started.Load():
		return errors.New("redisbroker: this broker already serves a server; connect one broker per server")
	case b.closing.Load():
		return ErrClosed
	}
	id := node.ID()
	if wszero.NodeOf(id+".") != id {
		return fmt.Errorf("redisbroker: %.80q is not a node ID", id)
	}
	b.node, b.nodeID = node, id
	// go-redis keeps the channels even when Redis cannot be reached now,
	// and subscribes to them whenever it (re)connects.
	b.ps = b.rdb.Subscribe(ctx, b.channelAll(), b.channelNode(id))
	in := b.ps.ChannelWithSubscriptions(redis.WithChannelSize(deliverBuffer))
	b.started.Store(true)
	b.wg.Add(1)
	go b.publishLoop()
	go b.deliverLoop(in)
	return nil
}

// Publish queues frame for the clients of other nodes that to names. It
// never blocks: when the queue is full it returns ErrQueueFull.
func (b *Broker) Publish(to wszero.Target, frame []byte) error {
	if err := b.usable(); err != nil {
		return err
	}
	var channel string
	switch {
	case to.Client != "":
		node := wszero.NodeOf(to.Client)
		if node == "" {
			return fmt.Errorf("redisbroker: %.60q is not the ID of a client in a cluster", to.Client)
		}
		channel = b.channelNode(node)
	case to.Group != "":
		channel = b.channelGroup(to.Group)
	default:
		channel = b.channelAll()
	}
	data := appendFrame(make([]byte, 0, frameSize(b.nodeID, to, frame)), b.nodeID, to, frame)
	return b.enqueue(outMsg{channel: channel, data: data, gen: b.gen.Load()})
}

// Signal queues msg for node's Node.Signal, or for every other node's when
// node is "". It never blocks: when the queue is full it returns
// ErrQueueFull.
func (b *Broker) Signal(node string, msg []byte) error {
	if err := b.usable(); err != nil {
		return err
	}
	if len(msg) > wszero.MaxSignal {
		return fmt.Errorf("redisbroker: a signal of %d bytes is over wszero.MaxSignal (%d)", len(msg), wszero.MaxSignal)
	}
	channel := b.channelAll()
	if node != "" {
		if wszero.NodeOf(node+".") != node {
			return fmt.Errorf("redisbroker: %.80q is not a node ID", node)
		}
		channel = b.channelNode(node)
	}
	data := appendSignal(make([]byte, 0, 2+len(b.nodeID)+len(msg)), b.nodeID, msg)
	return b.enqueue(outMsg{channel: channel, data: data, gen: b.gen.Load()})
}

// GroupChanged notes that group's local membership changed; the broker's
// publishing goroutine then subscribes or unsubscribes, before it
// publishes anything queued after this call: once another node hears of
// a new member (the server's presence signal), its broadcasts to the
// group reach this node. It never blocks.
func (b *Broker) GroupChanged(group string) {
	b.mu.Lock()
	b.dirty[group] = struct{}{}
	b.gen.Add(1)
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Groups returns the groups whose channels the broker is subscribed to
// now, for tests and metrics.
func (b *Broker) Groups() []string {
	b.subsMu.Lock()
	defer b.subsMu.Unlock()
	names := slices.AppendSeq(make([]string, 0, len(b.subs)), maps.Keys(b.subs)) // empty, not nil, with none
	slices.Sort(names)
	return names
}

// Close publishes what is queued, then closes the subscriptions and the
// connections. It gives up when ctx ends (or after 2 s when ctx has no
// deadline), and at once when Redis cannot be reached: then what is still
// queued is dropped, and Close returns an error that counts it. The wszero
// server calls it at the end of Shutdown.
func (b *Broker) Close(ctx context.Context) error {
	if b.closing.Swap(true) {
		<-b.done
		return nil
	}
	defer close(b.done)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, closeWait)
		defer cancel()
	}
	close(b.stop) // the publisher sends what is queued, then ends
	b.cancel()
	var err error
	if b.started.Load() {
		flushed := make(chan struct{})
		go func() {
			b.wg.Wait()
			close(flushed)
		}()
		select {
		case <-flushed:
		case <-ctx.Done():
			err = ctx.Err()
			_ = b.rdb.Close() // a pipeline waiting for Redis fails at once
			<-flushed
		}
		_ = b.ps.Close()
		select {
		case <-b.delivered:
		case <-ctx.Done(): // go-redis's reader is still dialling: it ends when its dial does
		}
	}
	switch n := b.dropped.Load(); {
	case n > 0 && err != nil:
		err = fmt.Errorf("redisbroker: %d messages for other nodes were dropped at Close: Redis did not take them in time: %w", n, err)
	case n > 0:
		err = fmt.Errorf("redisbroker: %d messages for other nodes were dropped at Close: Redis cannot be reached", n)
	case err != nil:
		err = fmt.Errorf("redisbroker: Redis did not take what was queued in time: %w", err)
	}
	if cerr := b.rdb.Close(); cerr != nil && !errors.Is(cerr, redis.ErrClosed) && err == nil {
		err = fmt.Errorf("redisbroker: closing the connection to Redis: %w", cerr)
	}
	return err
}

// usable says why the broker cannot take a message now, if it cannot.
func (b *Broker) usable() error {
	switch {
	case b.closing.Load():
		return ErrClosed
	case !b.started.Load():
		return errors.New("redisbroker: the broker has not started: pass it to wszero.WithBroker")
	}
	return nil
}

// enqueue queues m, or returns ErrQueueFull.
func (b *Broker) enqueue(m outMsg) error {
	size := int64(len(m.data))
	if b.queued.Add(size) <= int64(b.opts.queueBytes) {
		select {
		case b.out <- m:
			return nil
		default:
		}
	}
	b.queued.Add(-size)
	b.throttle.Log(b.log, slog.LevelWarn, "queue-full", "redisbroker: a message for other nodes was dropped: the publishing queue is full",
		"queue", b.opts.queue, "queue_bytes", b.opts.queueBytes, "channel", m.channel)
	return ErrQueueFull
}

// publishLoop publishes queued messages in order, many to a pipeline, and
// makes the group subscriptions that GroupChanged asks for before the
// messages queued after it, until Close; then it publishes what is still
// queued: all of it while Redis takes it, none once it cannot be reached.
func (b *Broker) publishLoop() {
	defer b.wg.Done()
	batch := make([]outMsg, 0, b.opts.batch)
	for {
		select {
		case m := <-b.out:
			batch = b.fill(append(batch[:0], m))
			// The messages queued after a GroupChanged wait for its
			// subscription, the ones before it do not.
			if i := slices.IndexFunc(batch, func(m outMsg) bool { return m.gen > b.synced }); i >= 0 {
				if i > 0 {
					b.send(batch[:i])
				}
				b.syncGroups()
				batch = batch[i:]
			}
			b.send(batch)
		case <-b.kick:
			b.syncGroups()
		case <-b.stop:
			for flushing := true; ; {
				batch = b.fill(batch[:0])
				switch {
				case len(batch) == 0:
					return
				case flushing:
					flushing = b.send(batch)
				default:
					b.drop(batch)
				}
			}
		}
	}
}

// fill adds to batch what else is queued, up to a pipeline's worth.
func (b *Broker) fill(batch []outMsg) []outMsg {
	size := 0
	for _, m := range batch {
		size += len(m.data)
	}
	for len(batch) < b.opts.batch && size < maxBatchBytes {
		select {
		case m := <-b.out:
			batch = append(batch, m)
			size += len(m.data)
		default:
			return batch
		}
	}
	return batch
}

// send publishes batch in one pipeline. While Redis cannot be reached it
// tries again, until Close; a batch that failed on the way is not sent
// again, since Redis may have run part of it. It reports false when Close
// has begun and Redis cannot be reached, or the client is closed: what is
// left is dropped then.
func (b *Broker) send(batch []outMsg) bool {
	ctx := context.Background()
	var retry *time.Timer
	for {
		cmds, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, m := range batch {
				p.Publish(ctx, m.channel, m.data)
			}
			return nil
		})
		switch {
		case err == nil:
			b.release(batch)
			return true
		case errors.Is(err, redis.ErrClosed):
			b.drop(batch)
			return false
		case !unsent(err):
			failed := 0
			for _, c := range cmds {
				if c.Err() != nil {
					failed++
				}
			}
			b.throttle.Log(b.log, slog.LevelWarn, "publish", "redisbroker: messages for other nodes may be lost: Redis failed while taking them",
				"messages", failed, "err", err)
			b.release(batch)
			return true
		}
		if retry == nil {
			retry = time.NewTimer(b.opts.reconnectWait)
			defer retry.Stop()
		} else {
			retry.Reset(b.opts.reconnectWait)
		}
		select {
		case <-retry.C:
		case <-b.stop:
			b.drop(batch)
			return false
		}
	}
}

// release takes a batch that is done with off the queue's bytes.
func (b *Broker) release(batch []outMsg) {
	size := 0
	for _, m := range batch {
		size += len(m.data)
	}
	b.queued.Add(-int64(size))
}

// drop counts a batch that Close could not publish.
func (b *Broker) drop(batch []outMsg) {
	b.dropped.Add(int64(len(batch)))
	b.release(batch)
}

// unsent reports whether err says that a pipeline reached no Redis: no
// connection could be made or had.
func unsent(err error) bool {
	var op *net.OpError
	return errors.Is(err, redis.ErrPoolTimeout) || errors.As(err, &op) && op.Op == "dial"
}

// deliverLoop hands what other nodes publish to the server, and notes the
// subscriptions Redis confirms, until the pub/sub connection is closed.
func (b *Broker) deliverLoop(in <-chan any) {
	defer close(b.delivered)
	for m := range in {
		if b.closing.Load() {
			continue // drained, so that go-redis's reader can end
		}
		switch m := m.(type) {
		case *redis.Message:
			b.deliver(m)
		case *redis.Subscription:
			b.confirm(m)
		}
	}
}

// deliver hands one message to the server, unless it is this node's own.
func (b *Broker) deliver(m *redis.Message) {
	e, ok := decodeEnvelope(m.Payload)
	if !ok {
		b.throttle.Log(b.log, slog.LevelWarn, "format", "redisbroker: a message in a form this version does not know was dropped (a node of another version, or another program on the channel?)",
			"channel", m.Channel, "bytes", len(m.Payload))
		return
	}
	if e.from == b.nodeID {
		return // our own: already delivered here
	}
	switch e.kind {
	case kindFrame:
		b.node.Deliver(e.to, []byte(e.body))
	case kindSignal:
		b.node.Signal(e.from, []byte(e.body))
	}
}

// confirm notes a subscription Redis confirmed. The first channel of a
// connection is counted 1: a new connection, on which go-redis has
// subscribed again to every channel.
func (b *Broker) confirm(s *redis.Subscription) {
	reconnected := false
	b.stateMu.Lock()
	b.seq++
	switch s.Kind {
	case "subscribe":
		if s.Count == 1 {
			b.confirmed = map[string]uint64{}
			b.connections++
			reconnected = b.connections > 1
		}
		b.confirmed[s.Channel] = b.seq
	case "unsubscribe":
		delete(b.confirmed, s.Channel)
	}
	close(b.changed)
	b.changed = make(chan struct{})
	b.stateMu.Unlock()
	if b.down.Swap(false) || reconnected {
		b.log.Info("redisbroker: reconnected to Redis; subscriptions restored (what other nodes published meanwhile did not reach this one)",
			"redis", b.addr)
	}
}

// waitState waits until cond, which runs with b.stateMu held, is true, or
// ctx ends.
func (b *Broker) waitState(ctx context.Context, cond func() bool) error {
	for {
		b.stateMu.Lock()
		ok, changed := cond(), b.changed
		b.stateMu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// lost notes that Redis could not be reached, and logs it once until it is
// back.
func (b *Broker) lost(err error) {
	if !b.started.Load() || b.closing.Load() {
		return
	}
	if !b.down.Swap(true) {
		b.log.Warn("redisbroker: cannot reach Redis; local delivery goes on, other nodes are out of reach until it is back",
			"redis", b.addr, "err", err)
	}
}

// syncGroups makes the subscriptions to the groups GroupChanged named
// follow their local membership, with one SUBSCRIBE and one UNSUBSCRIBE
// at most, and waits until Redis has confirmed the SUBSCRIBE (for 5 s at
// most; not at all when Redis is away).
func (b *Broker) syncGroups() {
	b.mu.Lock()
	dirty, gen := b.dirty, b.gen.Load()
	b.dirty = map[string]struct{}{}
	b.mu.Unlock()
	defer func() { b.synced = gen }()
	if len(dirty) == 0 {
		return
	}
	want := make(map[string]bool, len(dirty))
	for g := range dirty {
		want[g] = b.node.Members(g) > 0
	}
	var sub, unsub []string
	b.subsMu.Lock()
	for g, w := range want {
		_, have := b.subs[g]
		switch {
		case w && !have:
			b.subs[g] = struct{}{}
			sub = append(sub, b.channelGroup(g))
		case !w && have:
			delete(b.subs, g)
			unsub = append(unsub, b.channelGroup(g))
		}
	}
	b.subsMu.Unlock()
	ctx, cancel := context.WithTimeout(b.stopCtx, subscribeWait)
	defer cancel()
	if len(unsub) > 0 {
		_ = b.ps.Unsubscribe(ctx, unsub...) // when Redis is away, the connection has gone with its subscriptions
	}
	if len(sub) == 0 {
		return
	}
	b.stateMu.Lock()
	before := b.seq
	b.stateMu.Unlock()
	// go-redis notes the channels even when it cannot reach Redis, and
	// subscribes to what it has whenever it reconnects.
	if err := b.ps.Subscribe(ctx, sub...); err != nil {
		b.throttle.Log(b.log, slog.LevelInfo, "subscribe", "redisbroker: Redis is away: groups are subscribed to once it is back",
			"groups", len(sub), "err", err)
		return
	}
	err := b.waitState(ctx, func() bool {
		for _, ch := range sub {
			if b.confirmed[ch] <= before {
				return false
			}
		}
		return true
	})
	if err != nil {
		b.throttle.Log(b.log, slog.LevelWarn, "subscribe-slow", "redisbroker: Redis did not confirm a group's subscription in time; publishing goes on",
			"groups", len(sub), "wait", subscribeWait)
	}
}

func (b *Broker) channelAll() string { return b.opts.prefix + ".all" }

func (b *Broker) channelNode(node string) string { return b.opts.prefix + ".n." + node }

func (b *Broker) channelGroup(group string) string {
	return b.opts.prefix + ".g." + base64.RawURLEncoding.EncodeToString([]byte(group))
}

// dialHook tells the broker when Redis cannot be reached.
type dialHook struct{ b *Broker }

func (h dialHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			h.b.lost(err)
		}
		return conn, err
	}
}

func (h dialHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h dialHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// redact removes the password from a Redis URL, for logs.
func redact(url string) string {
	u, err := neturl.Parse(url)
	if err != nil {
		return "(a URL that does not parse)"
	}
	return u.Redacted()
}
