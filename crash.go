package wszero

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
)

// crash is a handler's recovered panic, told to the person who must act on
// it: the page's sender and the server's log.
type crash struct {
	op    string
	value any    // what was passed to panic
	site  string // "main.go:13", where the program's own code panicked; "" when unknown
	stack string
}

// newCrash describes the panic v of op's handler. It must be called in
// the deferred function that recovered v, so that the panicking frames
// are still on the stack.
func newCrash(op string, v any) crash {
	return crash{op: op, value: v, site: panicSite(), stack: string(debug.Stack())}
}

// panicSite is the file and line of the innermost frame of the program's
// own code (neither the runtime's, reflect's nor wszero's) on the stack.
func panicSite() string {
	var pcs [64]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs[:])])
	for {
		f, more := frames.Next()
		if f.Function != "" && !isFrameworkFrame(f.Function) {
			return fmt.Sprintf("%s:%d", filepath.Base(f.File), f.Line)
		}
		if !more {
			return ""
		}
	}
}

// isFrameworkFrame reports whether a function is the runtime's, reflect's
// or wszero's own, not the program's.
func isFrameworkFrame(fn string) bool {
	for _, prefix := range []string{"runtime.", "reflect.", "github.com/wszero/wszero.", "github.com/wszero/wszero/internal/"} {
		if strings.HasPrefix(fn, prefix) {
			return true
		}
	}
	return false
}

// forTheSender is what the page is told. Under RunServer (teaching) it
// says what happened, where, and, for the commonest slip, what it means.
func (cr crash) forTheSender(teaching bool) string {
	if !teaching {
		return cr.op + " crashed on the server: the server's log says where and why"
	}
	return fmt.Sprintf("%s crashed on the server%s: %v%s", cr.op, cr.at(), cr.value, cr.meaning())
}

// at is " at main.go:13", where the crash happened, or "" when unknown.
func (cr crash) at() string {
	if cr.site == "" {
		return ""
	}
	return " at " + cr.site
}

// meaning explains a panic in words a child can act on, when it is one of
// the common kinds.
func (cr crash) meaning() string {
	var te *runtime.TypeAssertionError
	if err, ok := cr.value.(error); ok && errors.As(err, &te) && strings.Contains(te.Error(), "interface {} is nil") {
		return fmt.Sprintf(`. Something was empty: c.Get gives nothing (nil) for a key that c.Set has not stored yet, for example when %q runs before the message that sets it. Check it first: v, ok := c.Get("…").(string)`, cr.op)
	}
	return ""
}

// log writes the crash to the server's log: under RunServer, one short
// line for a person in front of a terminal, with the stack only when
// WSZERO_STACK=1 asks for it; otherwise a line with the whole stack, for
// a program's logs.
func (s *Server) logCrash(c *Client, cr crash) {
	if s.teaching {
		args := []any{"client", c.id}
		if os.Getenv("WSZERO_STACK") == "1" {
			args = append(args, "stack", cr.stack)
		} else {
			args = append(args, "more", "run with WSZERO_STACK=1 to see the whole stack")
		}
		s.logger().Error(fmt.Sprintf("wszero: %s crashed%s: %v", cr.op, cr.at(), cr.value), args...)
		return
	}
	s.logger().Error("wszero: handler panicked", "op", cr.op, "client", c.id, "at", cr.site, "panic", cr.value, "stack", cr.stack)
}
