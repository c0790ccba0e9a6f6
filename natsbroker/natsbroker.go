// Package natsbroker spreads a wszero server over several processes or
// machines through NATS (https://nats.io): Broadcast, BroadcastTo, SendTo,
// SendToOne, Presence and a session's resume reach the clients of every
// server connected to the same NATS.
//
//	b, err := natsbroker.Connect("nats://127.0.0.1:4222")
//	if err != nil {
//		log.Fatal(err)
//	}
//	s := wszero.New(wszero.WithBroker(b))
//
// # Subjects
//
// Under a prefix ("wszero" by default, WithSubjectPrefix), each node
// subscribes to
//
//	wszero.all           broadcasts
//	wszero.n.<node>      sends to its own clients (SendTo, SendToOne)
//	wszero.g.<group>     a group's broadcasts, only while the group has
//	                     members on this node (<group> is the name in
//	                     unpadded base64url, so any name makes a subject)
//	wszero.s             the servers' signals to every node
//	wszero.s.<node>      the servers' signals to this node
//
// Signals are what the wszero servers tell each other besides their
// clients' frames: who is in which group, and the tunnels through which a
// client that reconnected to another node resumes its session on the node
// that holds it. What they mean is the server's; natsbroker carries them.
//
// A node delivers its own broadcasts to its own clients directly, before
// publishing, and the connection is made with nats.NoEcho, so NATS never
// sends a node's publications back to it: local delivery does not wait for
// NATS, keeps working while NATS is away, and happens exactly once. Every
// message carries the publishing node's ID in a header as well
// (Wszero-Node), and a node drops any that would come back. A send names
// its client in the Wszero-Client header, and a SendToOne its group too,
// in Wszero-Group (in unpadded base64url).
//
// # Order and faults
//
// One goroutine publishes, in the order the server handed the messages
// over, and all subscriptions share one channel read by one goroutine, so
// what one node publishes and signals reaches each other node in order,
// whatever its subject. Publishing never blocks the server: messages wait
// in a bounded queue (WithQueue), and while NATS is away in nats.go's
// reconnect buffer (nats.ReconnectBufSize, 8 MiB by default); when both
// are full, Publish and Signal return an error and the message does not
// reach other nodes. The connection reconnects by itself for ever and
// subscribes again; drops, reconnections and lost messages are logged.
// Messages published while a node is away from NATS do not reach it (NATS
// core is at most once): the server repairs what a lost signal breaks
// (a tunnel then breaks rather than lose bytes).
//
// The publishing goroutine also subscribes to a group's subject when the
// group gains its first member on the node, before it publishes anything
// the server queued after: once another node has the presence signal that
// says so, its broadcasts to the group reach this node's members. A node
// that falls more than 65,536 messages behind in delivering drops the
// excess, and NATS's slow-consumer error is logged.
package natsbroker

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	neturl "net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wszero/wszero"
)

// Headers of the messages natsbroker publishes.
const (
	headerNode   = "Wszero-Node"   // the publishing node's ID
	headerClient = "Wszero-Client" // the client a send is for
	headerGroup  = "Wszero-Group"  // a SendToOne's group, in unpadded base64url
)

// Defaults of the options.
const (
	DefaultSubjectPrefix = "wszero"               // DefaultSubjectPrefix is the first token of every subject.
	DefaultQueue         = 65536                  // DefaultQueue is how many messages may wait to be published.
	DefaultReconnectWait = 500 * time.Millisecond // DefaultReconnectWait is the pause between reconnection attempts.

	deliverBuffer = 65536           // incoming messages waiting for delivery; past it NATS reports a slow consumer
	logEvery      = 5 * time.Second // at most one log line of a kind this often
	closeWait     = 2 * time.Second // how long Close waits for NATS when its context has no deadline
	startFlush    = time.Second     // how long Start waits for NATS to have the subscriptions
)

// ErrQueueFull is returned by Publish and Signal when the publishing queue
// is full: NATS has been away or slow for longer than the queue and the
// reconnect buffer can hold.
var ErrQueueFull = errors.New("natsbroker: the publishing queue is full; NATS is away or too slow")

// ErrClosed is returned by Publish and Signal once the broker is closed.
var ErrClosed = errors.New("natsbroker: the broker is closed")

// Option configures Connect.
type Option func(*options)

type options struct {
	log    *slog.Logger
	prefix string
	queue  int
	nats   []nats.Option
}

// WithLogger sends the broker's log lines to l; nil silences them. The
// default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// WithSubjectPrefix puts every subject under prefix instead of "wszero",
// so that several applications can share one NATS. All the nodes of one
// application must use the same prefix.
func WithSubjectPrefix(prefix string) Option {
	if prefix == "" || strings.ContainsAny(prefix, " \t\r\n*>") {
		panic(fmt.Sprintf("natsbroker.WithSubjectPrefix(%q): a prefix is one or more NATS subject tokens, like \"chat\" or \"acme.chat\"", prefix))
	}
	return func(o *options) { o.prefix = prefix }
}

// WithQueue sets how many messages may wait to be published (DefaultQueue).
func WithQueue(messages int) Option {
	if messages < 1 {
		panic(fmt.Sprintf("natsbroker.WithQueue(%d): the queue must hold at least one message", messages))
	}
	return func(o *options) { o.queue = messages }
}

// WithNATSOptions passes options to nats.Connect, after natsbroker's own
// (so they win): credentials, TLS, nats.ReconnectWait,
// nats.ReconnectBufSize… natsbroker's disconnect, reconnect and error
// handlers log what happens; replacing them silences those lines.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(o *options) { o.nats = append(o.nats, opts...) }
}

// Broker is a wszero.Broker on a NATS connection. Pass it to
// wszero.WithBroker: the wszero server starts it and closes it (draining
// the connection) on Shutdown. A Broker serves one server.
//
// Its methods are safe to call from any goroutine, and none waits for
// NATS but Start (a moment) and Close.
type Broker struct {
	nc     *nats.Conn
	opts   options
	log    *slog.Logger
	closed chan struct{} // closed when the NATS connection is closed

	node   wszero.Node
	nodeID string
	out    chan *nats.Msg // waiting to be published
	in     chan *nats.Msg // every subscription's messages, in arrival order
	stop   chan struct{}  // closed by Close: the goroutines end
	wg     sync.WaitGroup

	closing  atomic.Bool // Close has begun
	hasDirty atomic.Bool // dirty has groups: the publisher checks them first

	mu       sync.Mutex
	started  bool
	dirty    map[string]struct{}  // groups whose subscription to check
	logTimes map[string]time.Time // for throttled log lines
	kick     chan struct{}        // something is dirty

	subsMu sync.Mutex                    // held by the publisher while it (un)subscribes
	subs   map[string]*nats.Subscription // by group, while it has local members
}

// Connect connects to the NATS server at url (several may be given, separated
// by commas) and returns a Broker for wszero.WithBroker. It fails if NATS
// cannot be reached now; once connected, it reconnects by itself for ever.
func Connect(url string, opts ...Option) (*Broker, error) {
	b := &Broker{
		opts: options{
			log:    slog.Default(),
			prefix: DefaultSubjectPrefix,
			queue:  DefaultQueue,
		},
		closed:   make(chan struct{}),
		stop:     make(chan struct{}),
		subs:     map[string]*nats.Subscription{},
		dirty:    map[string]struct{}{},
		kick:     make(chan struct{}, 1),
		logTimes: map[string]time.Time{},
	}
	for _, o := range opts {
		o(&b.opts)
	}
	b.log = b.opts.log
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.out = make(chan *nats.Msg, b.opts.queue)
	b.in = make(chan *nats.Msg, deliverBuffer)
	nopts := []nats.Option{
		nats.Name("wszero"),
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(DefaultReconnectWait),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if b.closing.Load() {
				return // Close: the server is shutting down
			}
			b.log.Warn("natsbroker: disconnected from NATS; local delivery goes on, other nodes are out of reach until it is back",
				"nats", redact(url), "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("natsbroker: reconnected to NATS; subscriptions restored", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			b.logThrottled("nats-error", "natsbroker: NATS reported an error", "err", err)
		}),
	}
	no := nats.GetDefaultOptions()
	for _, u := range strings.Split(url, ",") {
		no.Servers = append(no.Servers, strings.TrimSpace(u))
	}
	for _, o := range append(nopts, b.opts.nats...) {
		if err := o(&no); err != nil {
			return nil, fmt.Errorf("natsbroker: %w", err)
		}
	}
	userClosed := no.ClosedCB // Close waits for the connection to be closed
	no.ClosedCB = func(nc *nats.Conn) {
		close(b.closed)
		if userClosed != nil {
			userClosed(nc)
		}
	}
	nc, err := no.Connect()
	if err != nil {
		return nil, fmt.Errorf("natsbroker: cannot connect to NATS at %s: %w", url, err)
	}
	b.nc = nc
	return b, nil
}

// Conn returns the broker's NATS connection, for its status and statistics.
func (b *Broker) Conn() *nats.Conn { return b.nc }

// Start subscribes to broadcasts, to the node's own subject and to the
// signals' subjects, and starts delivering and publishing. It waits until
// NATS has the subscriptions, for at most 1 s. The wszero server calls it,
// from New.
func (b *Broker) Start(node wszero.Node) error {
	b.mu.Lock()
	if err := b.subscribe(node); err != nil {
		b.mu.Unlock()
		return err
	}
	b.started = true
	b.wg.Add(2)
	go b.publishLoop()
	go b.deliverLoop()
	b.mu.Unlock()
	// Other nodes reach this one once NATS has the subscriptions; wait
	// for that a moment, not for ever: NATS may be slow or away.
	_ = b.nc.FlushTimeout(startFlush)
	return nil
}

// subscribe is Start's first part, with b.mu held.
func (b *Broker) subscribe(node wszero.Node) error {
	if b.started {
		return errors.New("natsbroker: this broker already serves a server; connect one broker per server")
	}
	if b.closing.Load() {
		return ErrClosed
	}
	b.node, b.nodeID = node, node.ID()
	for _, subj := range []string{b.subjectAll(), b.subjectNode(b.nodeID), b.subjectSignal(""), b.subjectSignal(b.nodeID)} {
		if _, err := b.nc.ChanSubscribe(subj, b.in); err != nil {
			return fmt.Errorf("natsbroker: cannot subscribe to %s: %w", subj, err)
		}
	}
	return nil
}

// Publish queues frame for the other nodes. It never blocks: when the queue
// is full it returns ErrQueueFull.
func (b *Broker) Publish(to wszero.Target, frame []byte) error {
	m := &nats.Msg{Header: nats.Header{}, Data: frame}
	m.Header.Set(headerNode, b.nodeID)
	switch {
	case to.Client != "":
		node := wszero.NodeOf(to.Client)
		if node == "" {
			return fmt.Errorf("natsbroker: %.60q is not the ID of a client in a cluster", to.Client)
		}
		m.Subject = b.subjectNode(node)
		m.Header.Set(headerClient, to.Client)
		if to.Group != "" { // SendToOne: the client, or another member there
			m.Header.Set(headerGroup, base64.RawURLEncoding.EncodeToString([]byte(to.Group)))
		}
	case to.Group != "":
		m.Subject = b.subjectGroup(to.Group)
	default:
		m.Subject = b.subjectAll()
	}
	return b.enqueue(m)
}

// Signal queues msg for node's server, or for every other node's when node
// is "". It never blocks: when the queue is full it returns ErrQueueFull.
func (b *Broker) Signal(node string, msg []byte) error {
	if len(msg) > wszero.MaxSignal {
		return fmt.Errorf("natsbroker: a signal of %d bytes is over wszero.MaxSignal (%d)", len(msg), wszero.MaxSignal)
	}
	if node != "" && wszero.NodeOf(node+".x") != node {
		return fmt.Errorf("natsbroker: %.60q is not a node ID", node)
	}
	m := &nats.Msg{Subject: b.subjectSignal(node), Header: nats.Header{}, Data: msg}
	m.Header.Set(headerNode, b.nodeID)
	return b.enqueue(m)
}

// enqueue queues m for the publisher, unless the queue is full or the
// broker closed.
func (b *Broker) enqueue(m *nats.Msg) error {
	if b.closing.Load() {
		return ErrClosed
	}
	select {
	case b.out <- m:
		return nil
	default:
		b.logThrottled("queue-full", "natsbroker: a message for other nodes was dropped: the publishing queue is full",
			"queue", b.opts.queue, "subject", m.Subject)
		return ErrQueueFull
	}
}

// GroupChanged notes that group's local membership changed; the broker's
// publishing goroutine then subscribes or unsubscribes, before it
// publishes anything queued after this call. It never blocks.
func (b *Broker) GroupChanged(group string) {
	b.mu.Lock()
	b.dirty[group] = struct{}{}
	b.hasDirty.Store(true)
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Close publishes what is queued, drains the NATS connection (the subscriptions stop, what was published is flushed) and
// closes it, giving up when ctx ends (or after 2 s when ctx has no
// deadline). The wszero server calls it at the end of Shutdown.
func (b *Broker) Close(ctx context.Context) error {
	if b.closing.Swap(true) {
		<-b.closed
		return nil
	}
	b.mu.Lock()
	started := b.started
	b.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, closeWait)
		defer cancel()
	}
	close(b.stop) // the publisher sends what is queued, then ends
	if started {
		b.wg.Wait()
	}
	var err error
	if derr := b.nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
		b.nc.Close() // Drain closes at once while reconnecting
	}
	select {
	case <-b.closed:
	case <-ctx.Done():
		err = fmt.Errorf("natsbroker: NATS did not drain in time: %w", ctx.Err())
		b.nc.Close()
		<-b.closed
	}
	return err
}

// publishLoop publishes queued messages in order, and makes the groups'
// subscriptions follow their local membership, until Close; then it
// publishes what is still queued.
func (b *Broker) publishLoop() {
	defer b.wg.Done()
	for {
		select {
		case m := <-b.out:
			b.syncGroups()
			b.publish(m)
		case <-b.kick:
			b.syncGroups()
		case <-b.stop:
			for {
				select {
				case m := <-b.out:
					b.publish(m)
				default:
					return
				}
			}
		}
	}
}

// publish hands one message to nats.go, which buffers it while reconnecting.
func (b *Broker) publish(m *nats.Msg) {
	if err := b.nc.PublishMsg(m); err != nil {
		b.logThrottled("publish", "natsbroker: a message for other nodes was dropped", "subject", m.Subject, "err", err)
	}
}

// deliverLoop hands what other nodes publish to the server, until Close.
func (b *Broker) deliverLoop() {
	defer b.wg.Done()
	for {
		select {
		case m := <-b.in:
			b.deliver(m)
		case <-b.stop:
			return
		}
	}
}

// deliver hands one message to the server.
func (b *Broker) deliver(m *nats.Msg) {
	from := m.Header.Get(headerNode)
	if from == b.nodeID {
		return // our own: already delivered here
	}
	rest, ok := strings.CutPrefix(m.Subject, b.opts.prefix+".")
	if !ok {
		return
	}
	var to wszero.Target
	switch {
	case rest == "all":
	case rest == "s" || strings.HasPrefix(rest, "s."):
		if from != "" {
			b.node.Signal(from, m.Data)
		}
		return
	case strings.HasPrefix(rest, "g."):
		name, err := base64.RawURLEncoding.DecodeString(rest[2:])
		if err != nil {
			return
		}
		to.Group = string(name)
	case strings.HasPrefix(rest, "n."):
		to.Client = m.Header.Get(headerClient)
		if to.Client == "" {
			return
		}
		if g := m.Header.Get(headerGroup); g != "" {
			name, err := base64.RawURLEncoding.DecodeString(g)
			if err != nil {
				return
			}
			to.Group = string(name)
		}
	default:
		return
	}
	b.node.Deliver(to, m.Data)
}

// syncGroups makes the subscriptions of the groups that GroupChanged
// named follow their local membership.
func (b *Broker) syncGroups() {
	if !b.hasDirty.Load() {
		return
	}
	b.mu.Lock()
	dirty := b.dirty
	b.dirty = map[string]struct{}{}
	b.hasDirty.Store(false)
	b.mu.Unlock()
	for g := range dirty {
		b.syncGroup(g)
	}
}

// syncGroup makes the subscription to group follow its local membership.
func (b *Broker) syncGroup(group string) {
	want := b.node.Members(group) > 0
	b.subsMu.Lock()
	defer b.subsMu.Unlock()
	sub, have := b.subs[group]
	switch {
	case want && !have:
		s, err := b.nc.ChanSubscribe(b.subjectGroup(group), b.in)
		if err != nil {
			b.log.Error("natsbroker: cannot subscribe to a group: its members here miss other nodes' broadcasts", "group", group, "err", err)
			return
		}
		b.subs[group] = s
	case !want && have:
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			b.log.Warn("natsbroker: cannot unsubscribe from a group", "group", group, "err", err)
		}
		delete(b.subs, group)
	}
}

// Groups returns the groups whose subjects the broker is subscribed to now,
// for tests and metrics.
func (b *Broker) Groups() []string {
	b.subsMu.Lock()
	defer b.subsMu.Unlock()
	names := slices.AppendSeq(make([]string, 0, len(b.subs)), maps.Keys(b.subs)) // empty, not nil, with none
	slices.Sort(names)
	return names
}

func (b *Broker) subjectAll() string { return b.opts.prefix + ".all" }

func (b *Broker) subjectNode(node string) string { return b.opts.prefix + ".n." + node }

// subjectSignal is the subject of signals to node, or to every node when
// node is "".
func (b *Broker) subjectSignal(node string) string {
	if node == "" {
		return b.opts.prefix + ".s"
	}
	return b.opts.prefix + ".s." + node
}

func (b *Broker) subjectGroup(group string) string {
	return b.opts.prefix + ".g." + base64.RawURLEncoding.EncodeToString([]byte(group))
}

// logThrottled logs a warning at most once per logEvery for each kind.
func (b *Broker) logThrottled(kind, msg string, args ...any) {
	now := time.Now()
	b.mu.Lock()
	last := b.logTimes[kind]
	if now.Sub(last) < logEvery {
		b.mu.Unlock()
		return
	}
	b.logTimes[kind] = now
	b.mu.Unlock()
	b.log.Warn(msg, args...)
}

// redact removes passwords and tokens from NATS URLs, for logs.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := neturl.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = nil
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
