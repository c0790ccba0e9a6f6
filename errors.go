package wszero

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrClosed is returned when sending to, or grouping, a client that has
// disconnected or is being closed.
var ErrClosed = errors.New("wszero: the client has disconnected")

// ErrTooBig is wrapped by the error Send, Broadcast, BroadcastTo and SendTo
// return for a message larger than a client's send queue holds
// (WithSendQueue): it could never be sent, so it is refused, and no client
// is disconnected for it.
var ErrTooBig = errors.New("wszero: the message is too big to send")

// ErrTooManyGroups is wrapped by the error AddToGroup returns when the
// client is already in as many groups as WithMaxGroupsPerClient allows.
var ErrTooManyGroups = errors.New("wszero: too many groups")

// HTTPError refuses a WebSocket connection with an HTTP status and a
// reason. Return one (or an error wrapping one) from the function given to
// WithAuthenticate:
//
//	return nil, &wszero.HTTPError{Status: http.StatusForbidden, Reason: "this class is closed today"}
type HTTPError struct {
	Status int    // an HTTP status from 400 to 599; any other counts as 401 Unauthorized
	Reason string // the response's body, for whoever tried to connect; the status's text when empty
}

// Error returns the status and the reason.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status(), http.StatusText(e.status()), e.reason())
}

func (e *HTTPError) status() int {
	if e.Status < 400 || e.Status > 599 {
		return http.StatusUnauthorized
	}
	return e.Status
}

func (e *HTTPError) reason() string {
	if e.Reason == "" {
		return http.StatusText(e.status())
	}
	return e.Reason
}
