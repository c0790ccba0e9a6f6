package redisbroker

import "context"

// What the tests of package redisbroker_test see of the broker's insides.

// WithBatch sets how many messages one pipeline takes at most, so that a
// benchmark can compare pipelining with one round trip a message.
func WithBatch(messages int) Option {
	return func(o *options) { o.batch = messages }
}

// WaitGroup waits until Redis has subscribed the broker to group's channel
// (subscribed) or unsubscribed it, or ctx ends.
func (b *Broker) WaitGroup(ctx context.Context, group string, subscribed bool) error {
	channel := b.channelGroup(group)
	return b.waitState(ctx, func() bool { return (b.confirmed[channel] > 0) == subscribed })
}

// WaitConnection waits until Redis has confirmed, on the broker's n-th
// pub/sub connection or a later one, every channel the broker subscribes
// to, or ctx ends.
func (b *Broker) WaitConnection(ctx context.Context, n int) error {
	return b.waitState(ctx, func() bool {
		if b.connections < n || b.confirmed[b.channelAll()] == 0 || b.confirmed[b.channelNode(b.nodeID)] == 0 {
			return false
		}
		for _, g := range b.Groups() {
			if b.confirmed[b.channelGroup(g)] == 0 {
				return false
			}
		}
		return true
	})
}
