package client

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// ErrClosed is returned by Send and Call once the connection has ended,
// and by Call for a call still waiting when Close was called. Err returns
// it after Close.
var ErrClosed = errors.New("client: the connection was closed")

// ErrConnectionLost is matched (with errors.Is) by the error of a call
// that was waiting for its answer when the connection dropped, and by Err
// when the connection ended without Close.
var ErrConnectionLost = errors.New("client: the connection was lost")

// ErrQueueFull is returned by Send and Call while the client is
// reconnecting and the messages waiting for the connection have reached
// the limit set by Reconnect.Queue.
var ErrQueueFull = errors.New("client: too many messages are waiting for the connection to come back")

// ServerError is an error message from the server: the answer to a call
// that failed (match it with errors.As), or an "error" message that answers
// no call, which an On("error", func(e *client.ServerError) {…}) handler
// receives.
type ServerError struct {
	// Op is the op of the message the error is about: the op called, or
	// the server's "for" key. It is empty when the server does not say.
	Op string `json:"for,omitempty"`
	// Message is the server's words: the handler's error, or what was
	// wrong with the message.
	Message string `json:"msg"`
}

// Error returns the server's message, naming the op when the message
// does not.
func (e *ServerError) Error() string {
	if e.Op == "" || strings.HasPrefix(e.Message, e.Op) || strings.Contains(e.Message, strconv.Quote(e.Op)) {
		return "server: " + e.Message
	}
	return "server: " + e.Op + ": " + e.Message
}

// HandshakeError is returned by Dial when the server answers the request
// to open a WebSocket connection with something else, such as 403 for a
// refused Origin or 401 for a missing token.
type HandshakeError struct {
	URL        string // the address dialled
	StatusCode int    // the HTTP status of the answer
	Message    string // the start of the answer's body, trimmed
}

// Error says who refused, how, and the server's words.
func (e *HandshakeError) Error() string {
	msg := fmt.Sprintf("client: %s refused the WebSocket connection: %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.StatusCode == http.StatusNotFound && !strings.HasSuffix(strings.SplitN(e.URL, "?", 2)[0], "/ws") {
		msg += ` (a wszero server's endpoint ends in "/ws", like ws://localhost:8000/ws)`
	}
	return msg
}

// lostError says why a connection dropped. It matches ErrConnectionLost.
type lostError struct {
	op    string // the call that was waiting, if any
	why   string
	cause error
}

func (e *lostError) Error() string {
	if e.op != "" {
		return fmt.Sprintf("client: the connection was lost before %q was answered: %s", e.op, e.why)
	}
	return "client: the connection was lost: " + e.why
}

func (e *lostError) Is(target error) bool { return target == ErrConnectionLost }

func (e *lostError) Unwrap() error { return e.cause }

// forCall returns the same error for the call op.
func (e *lostError) forCall(op string) error {
	c := *e
	c.op = op
	return &c
}

// gaveUpError ends a connection whose reconnecting failed too often.
type gaveUpError struct {
	attempts int
	last     error
}

func (e *gaveUpError) Error() string {
	return fmt.Sprintf("client: gave up reconnecting after %d attempts; the last: %s",
		e.attempts, strings.TrimPrefix(e.last.Error(), "client: "))
}

func (e *gaveUpError) Is(target error) bool { return target == ErrConnectionLost }

func (e *gaveUpError) Unwrap() error { return e.last }
