package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Resume is what a client that resumes a session sends first: the ID and
// key its last _session gave it, and how many numbered messages it has
// received in the session.
type Resume struct {
	ID   string
	Key  string
	Seen uint64
	Sent uint64 // how many numbered messages it has sent: those from the server's got on come again (0 when it does not say)
}

// MaxResumeFrame bounds the first frame of a connection that resumes, in
// bytes: an ID, a key and a count fit in far less.
const MaxResumeFrame = 1 << 10

// maxCount is the largest count a message may carry: the largest whole
// number that JavaScript holds exactly.
const maxCount = 1<<53 - 1

// ParseResume reads a client's _resume frame, saying in words what is
// wrong with one that is not.
func ParseResume(data []byte) (Resume, error) {
	if len(data) > MaxResumeFrame {
		return Resume{}, fmt.Errorf("the %s message is %d bytes, more than the %d it can be", OpResume, len(data), MaxResumeFrame)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || raw == nil {
		return Resume{}, fmt.Errorf("the first message of a connection that resumes must be a JSON object like {%q: %q, …}", KeyOp, OpResume)
	}
	var r Resume
	var op string
	if json.Unmarshal(raw[KeyOp], &op) != nil || op != OpResume {
		return Resume{}, fmt.Errorf("a connection that offers the %s subprotocol must send %s first", SubprotocolResume, OpResume)
	}
	if json.Unmarshal(raw[KeyID], &r.ID) != nil || r.ID == "" || len(r.ID) > 128 {
		return Resume{}, fmt.Errorf("%s needs %q, the ID the server gave in %s", OpResume, KeyID, OpSession)
	}
	if json.Unmarshal(raw[KeyKey], &r.Key) != nil || r.Key == "" || len(r.Key) > 128 {
		return Resume{}, fmt.Errorf("%s needs %q, the key the server gave in %s", OpResume, KeyKey, OpSession)
	}
	seen, ok := Count(raw[KeySeen])
	if !ok {
		return Resume{}, fmt.Errorf("%s needs %q, how many messages arrived, a whole number", OpResume, KeySeen)
	}
	r.Seen = seen
	if raw, ok := raw[KeySent]; ok {
		if r.Sent, ok = Count(raw); !ok {
			return Resume{}, fmt.Errorf("%s: %q is how many messages the client sent, a whole number", OpResume, KeySent)
		}
	}
	return r, nil
}

// Count reads a count: a JSON whole number from 0 to 2⁵³−1, written
// without a fraction or an exponent.
func Count(raw json.RawMessage) (uint64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || len(raw) > 16 || (len(raw) > 1 && raw[0] == '0') {
		return 0, false
	}
	for _, b := range raw {
		if b < '0' || b > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil || n > maxCount {
		return 0, false
	}
	return n, true
}

// Session is the server's _session message, the first on every
// connection of a session client.
type Session struct {
	ID      string
	Key     string // "" when the server does not resume sessions
	Resumed bool
	Missed  uint64 // the messages that follow, sent while the client was away
	Got     uint64 // the client's numbered messages the server has taken
	Why     string // why a resume was refused
}

// ParseSession reads a _session message (for the Go client).
func ParseSession(raw map[string]json.RawMessage) (Session, error) {
	var s Session
	if json.Unmarshal(raw[KeyID], &s.ID) != nil || s.ID == "" || json.Unmarshal(raw[KeyKey], &s.Key) != nil {
		return s, errors.New("the server's " + OpSession + " message lacks its id or key")
	}
	_ = json.Unmarshal(raw[KeyResumed], &s.Resumed)
	_ = json.Unmarshal(raw[KeyWhy], &s.Why)
	if r, ok := raw[KeyMissed]; ok {
		s.Missed, ok = Count(r)
		if !ok {
			return s, errors.New("the server's " + OpSession + " message has a bad " + KeyMissed)
		}
	}
	if r, ok := raw[KeyGot]; ok {
		s.Got, ok = Count(r)
		if !ok {
			return s, errors.New("the server's " + OpSession + " message has a bad " + KeyGot)
		}
	}
	return s, nil
}

// AppendSession renders s as the _session message.
func AppendSession(b []byte, s Session) []byte {
	b = fmt.Appendf(b, `{%q:%q,%q:`, KeyOp, OpSession, KeyID)
	b = strconv.AppendQuote(b, s.ID)
	b = fmt.Appendf(b, `,%q:%q,%q:%t`, KeyKey, s.Key, KeyResumed, s.Resumed)
	if s.Resumed {
		b = fmt.Appendf(b, `,%q:%d,%q:%d`, KeyMissed, s.Missed, KeyGot, s.Got)
	}
	if s.Why != "" {
		why, _ := json.Marshal(s.Why)
		b = fmt.Appendf(b, `,%q:%s`, KeyWhy, why)
	}
	return append(b, '}')
}

// AppendAck renders an _ack carrying count under key (KeyGot from the
// server, KeySeen from a client).
func AppendAck(b []byte, key string, count uint64) []byte {
	return fmt.Appendf(b, `{%q:%q,%q:%d}`, KeyOp, OpAck, key, count)
}
