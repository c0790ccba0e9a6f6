package wszero

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"time"

	"github.com/wszero/wszero/internal/protocol"
)

// session is what a client needs to resume after its connection drops:
// the secret that proves a new connection is the same page, and the
// messages sent to it that it may not have received.
//
// Both sides number the messages of a session from 0, in the order sent,
// leaving out the session protocol's own (protocol.Unnumbered). The log
// keeps the frames sent to the client from number first on, shared with
// everyone a broadcast went to (never copied), until the client's _ack
// says it has them; a resume sends those after the client's count again.
// Client.mu guards a session.
type session struct {
	key   sessionKey       // the secret that resumes it; a new one after each resume
	log   []*preparedFrame // numbered frames from first on, not yet acknowledged: a pointer each, the frame shared
	head  int              // log[head:] is kept; what is before it is let go
	first uint64           // the number of log[head]
	bytes int              // in log[head:]

	away     *time.Timer // ends the session when the resume window passes; nil while connected
	awayGen  uint64      // counts the times it went away, so that a late timer of an earlier time does nothing
	awayTold bool        // the client_away handler ran for this time away: client_back is owed
}

// sessionKey is 128 random bits; a client sees them as 22 URL-safe
// characters.
type sessionKey [16]byte

// newSessionKey returns a new random key.
func newSessionKey() sessionKey {
	var k sessionKey
	if _, err := rand.Read(k[:]); err != nil {
		panic("wszero: no randomness for session keys: " + err.Error())
	}
	return k
}

// String returns the key as the client sees it.
func (k sessionKey) String() string { return base64.RawURLEncoding.EncodeToString(k[:]) }

// keyMatches compares a key a client presents with the session's, in
// time that does not depend on where they differ.
func (ss *session) keyMatches(key string) bool {
	var got sessionKey
	if base64.RawURLEncoding.DecodedLen(len(key)) != len(got) {
		return false
	}
	if n, err := base64.RawURLEncoding.Strict().Decode(got[:], []byte(key)); err != nil || n != len(got) { // one spelling per key
		return false
	}
	return subtle.ConstantTimeCompare(ss.key[:], got[:]) == 1
}

// next is the number the next frame sent gets.
func (ss *session) next() uint64 { return ss.first + uint64(len(ss.log)-ss.head) }

// record keeps f, a numbered frame of size bytes, for a resume, letting go
// of the oldest frames beyond the limits.
func (ss *session) record(s *Server, f outFrame, size int) {
	pf := f.prepared
	if pf == nil {
		pf = newPreparedFrame(f.data) // a message to this client alone
	}
	ss.log = append(ss.log, pf)
	ss.bytes += size
	total := s.resumeBytes.Add(int64(size))
	lim := &s.opts
	for n := len(ss.log) - ss.head; n > 0 && (n > lim.resumeMessages || ss.bytes > lim.resumeBytes || total > lim.resumeServerBytes); n-- {
		total = s.resumeBytes.Add(-int64(ss.drop(1)))
	}
}

// drop lets go of the n oldest frames and returns their bytes.
func (ss *session) drop(n int) int {
	freed := 0
	for _, pf := range ss.log[ss.head : ss.head+n] {
		freed += len(pf.payload())
	}
	clear(ss.log[ss.head : ss.head+n])
	ss.head += n
	ss.first += uint64(n)
	ss.bytes -= freed
	switch {
	case ss.head == len(ss.log):
		ss.log, ss.head = ss.log[:0], 0
	case ss.head >= 64 && ss.head*2 >= len(ss.log):
		kept := copy(ss.log, ss.log[ss.head:])
		clear(ss.log[kept:])
		ss.log, ss.head = ss.log[:kept], 0
	}
	return freed
}

// ack lets go of the frames before seen, which the client says it has.
// A count the server never reached is ignored.
func (ss *session) ack(s *Server, seen uint64) {
	if seen <= ss.first || seen > ss.next() {
		return
	}
	s.resumeBytes.Add(-int64(ss.drop(int(seen - ss.first))))
}

// forget lets go of the whole log, when the session ends.
func (ss *session) forget(s *Server) {
	s.resumeBytes.Add(-int64(ss.bytes))
	clear(ss.log)
	ss.log, ss.head, ss.bytes = nil, 0, 0
}

// shrink lets an idle client's empty log go: the keepalive calls it.
func (ss *session) shrink() {
	if len(ss.log) == ss.head && cap(ss.log) > 0 {
		ss.log, ss.head = nil, 0
	}
}

// missedSince returns the frames from number seen on, for a resume, or
// ok false when some of them are no longer kept.
func (ss *session) missedSince(seen uint64) (frames []*preparedFrame, ok bool) {
	if seen < ss.first || seen > ss.next() { // before first: let go of, acknowledged or past the limits
		return nil, false
	}
	return ss.log[ss.head+int(seen-ss.first):], true
}

// sessionFrame is the _session message for c.
func sessionFrame(s protocol.Session) outFrame {
	return outFrame{kind: frameSession, data: protocol.AppendSession(nil, s)}
}
