package wszero

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

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

// Identity returns what the WithAuthenticate function returned for this
// client's request, or nil without WithAuthenticate. It never changes.
func (c *Client) Identity() any { return c.identity }

// InGroup reports whether the client is in group.
func (c *Client) InGroup(group string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, in := c.groups[group]
	return in
}

// authenticate runs WithAuthenticate's function for r. When it refuses,
// authenticate has answered the request and ok is false.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (identity any, ok bool) {
	if s.opts.authenticate == nil {
		return nil, true
	}
	defer func() {
		if v := recover(); v != nil {
			s.logger().Error("wszero: the WithAuthenticate function panicked", "panic", v, "remote", r.RemoteAddr, "stack", string(debug.Stack()))
			http.Error(w, "The server failed while checking this connection.", http.StatusInternalServerError)
			identity, ok = nil, false
		}
	}()
	identity, err := s.opts.authenticate(r)
	if err == nil {
		return identity, true
	}
	status, reason := http.StatusUnauthorized, err.Error()
	if reason == "" {
		reason = http.StatusText(status)
	}
	var he *HTTPError
	if errors.As(err, &he) {
		status, reason = he.status(), he.reason()
	}
	s.refuse(w, r, status, reason, slog.LevelInfo, "wszero: connection refused by the WithAuthenticate function", "reason", reason)
	return nil, false
}

// dispatch runs a decoded message's handler, unless a guard refuses it.
func (s *Server) dispatch(c *Client, in incoming) {
	if s.refused(c, in.ref, in.op) {
		return
	}
	s.run(c, in)
}

// refused runs the guards for op. When one refuses, or panics, it answers
// the sender with an error and reports true.
func (s *Server) refused(c *Client, ref []byte, op string) (refused bool) {
	guards := s.opts.guards[op]
	if len(s.opts.opGuards) == 0 && len(guards) == 0 {
		return false
	}
	defer func() {
		if v := recover(); v != nil {
			s.logger().Error("wszero: a guard panicked", "op", op, "client", c.id, "panic", v, "stack", string(debug.Stack()))
			c.sendError(ref, op, fmt.Sprintf("%.40q could not be checked: the server crashed checking it (the server's log says where)", op))
			refused = true
		}
	}()
	var err error
	for _, g := range s.opts.opGuards {
		if err = g(c, op); err != nil {
			break
		}
	}
	for i := 0; err == nil && i < len(guards); i++ {
		err = guards[i](c)
	}
	if err == nil {
		return false
	}
	msg := err.Error()
	if msg == "" {
		msg = fmt.Sprintf("%.40q is not allowed", op)
	}
	s.logThrottled(slog.LevelInfo, "wszero: a guard refused a message", "op", op, "client", c.id, "err", msg)
	c.sendError(ref, op, msg)
	return true
}
