package wszero

import "log/slog"

// brokerNode is the Server as its broker sees it.
type brokerNode struct{ s *Server }

func (n brokerNode) ID() string { return n.s.node }

func (n brokerNode) Members(group string) int {
	n.s.mu.RLock()
	defer n.s.mu.RUnlock()
	return len(n.s.groups[group])
}

// Deliver queues a frame another node published for the clients here that
// to names.
func (n brokerNode) Deliver(to Target, frame []byte) {
	s := n.s
	if to.Client != "" {
		c := s.Client(to.Client)
		if c == nil && to.Group != "" {
			c = s.nextLocalMember(to.Group) // SendToOne's member left on the way
		}
		if c == nil {
			s.logThrottled(slog.LevelInfo, "wszero: a message from another node was for a client that has left", "client", to.Client, "group", to.Group)
			return
		}
		_ = c.enqueue(outFrame{kind: frameText, data: frame})
		return
	}
	pm := newPreparedFrame(frame)
	if to.Group == "" {
		s.broadcastFrame(pm, frame)
		return
	}
	s.deliverFrame(s.members(to.Group, false), nil, pm, frame)
}

// Kinds of signal, its first byte: what the nodes of a cluster tell each
// other besides their clients' frames.
const (
	signalPresence = 'p' // who is in which group (presence.go)
	signalTunnel   = 't' // a tunnel's bytes (tunnel.go)
)

// Signal hands a signal from another node to the part of the server it is
// for.
func (n brokerNode) Signal(from string, msg []byte) {
	if len(msg) == 0 || from == n.s.node || !validNodeID(from) {
		return
	}
	switch msg[0] {
	case signalPresence:
		n.s.presence.receive(from, msg[1:])
	case signalTunnel:
		n.s.tunnelSignal(from, msg[1:])
	}
}

// signal sends body, of the kind given, to node, or to every other node
// when node is "".
func (s *Server) signal(node string, kind byte, body []byte) error {
	msg := make([]byte, 0, 1+len(body))
	msg = append(append(msg, kind), body...)
	return s.broker.Signal(node, msg)
}
