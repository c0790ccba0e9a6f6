package redisbroker

import (
	"encoding/binary"

	"github.com/wszero/wszero"
)

// Kinds of message, the envelope's first byte.
const (
	kindFrame  = 'F' // a frame for clients (Broker.Publish)
	kindSignal = 'S' // a signal for the node (Broker.Signal)
)

// maxNodeID is the length of the longest node ID an envelope carries.
const maxNodeID = 64

// envelope is a message between nodes, as decoded.
type envelope struct {
	kind byte
	from string        // the sender's node ID
	to   wszero.Target // for a frame
	body string        // the frame or the signal
}

// appendFrame appends the envelope of a frame for to's clients, from the
// node whose ID is from.
func appendFrame(dst []byte, from string, to wszero.Target, frame []byte) []byte {
	dst = appendHead(dst, kindFrame, from)
	dst = binary.AppendUvarint(dst, uint64(len(to.Client)))
	dst = append(dst, to.Client...)
	dst = binary.AppendUvarint(dst, uint64(len(to.Group)))
	dst = append(dst, to.Group...)
	return append(dst, frame...)
}

// appendSignal appends the envelope of a signal from the node whose ID is
// from.
func appendSignal(dst []byte, from string, msg []byte) []byte {
	return append(appendHead(dst, kindSignal, from), msg...)
}

// appendHead appends the kind and the sender, which every envelope starts
// with.
func appendHead(dst []byte, kind byte, from string) []byte {
	dst = append(dst, kind, byte(len(from)))
	return append(dst, from...)
}

// frameSize is the size of a frame's envelope.
func frameSize(from string, to wszero.Target, frame []byte) int {
	return 2 + len(from) + 2*binary.MaxVarintLen64 + len(to.Client) + len(to.Group) + len(frame)
}

// decodeEnvelope reads an envelope. It reports false when msg is not one
// this version of redisbroker knows.
func decodeEnvelope(msg string) (envelope, bool) {
	var e envelope
	if len(msg) < 2 {
		return e, false
	}
	e.kind = msg[0]
	n := int(msg[1])
	if n == 0 || n > maxNodeID || len(msg) < 2+n {
		return e, false
	}
	e.from, msg = msg[2:2+n], msg[2+n:]
	switch e.kind {
	case kindSignal:
		e.body = msg
		return e, true
	case kindFrame:
		var ok bool
		if e.to.Client, msg, ok = cutString(msg); !ok {
			return e, false
		}
		if e.to.Group, msg, ok = cutString(msg); !ok {
			return e, false
		}
		e.body = msg
		return e, true
	}
	return e, false
}

// cutString reads a string after its length as a uvarint, in its
// shortest form, and returns the rest.
func cutString(msg string) (s, rest string, ok bool) {
	var b [binary.MaxVarintLen64]byte
	n, k := binary.Uvarint(b[:copy(b[:], msg)])
	if k <= 0 || n > uint64(len(msg)-k) || k != len(binary.AppendUvarint(b[:0], n)) {
		return "", msg, false
	}
	return msg[k : k+int(n)], msg[k+int(n):], true
}
