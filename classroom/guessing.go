package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// guessLimits slow down guessing the teacher's code: a wrong code costs a
// try, and tries come back slowly, for each address and for everyone
// together, however the guesses arrive (the teacher's page over HTTP, or
// teacher_login over WebSockets, across reconnections). The teacher's own
// computer (localhost) is never held back, so that a student's script
// cannot lock the teacher out.
type guessLimits struct {
	mu      sync.Mutex
	byAddr  map[string]*rate.Limiter
	overall *rate.Limiter
	wrong   int       // wrong codes since the teacher was last told
	told    time.Time // when the teacher was last told
	out     io.Writer // the terminal
}

// The guessing limits: a few tries an address, and a few more for all.
const (
	triesPerAddr   = 5
	triesOverall   = 20
	triesComeBack  = time.Minute / 5 // one try back every 12 s, for an address
	overallBack    = time.Minute / 20
	tellTheTeacher = time.Minute // at most one line a minute in the terminal
)

func newGuessLimits(out io.Writer) *guessLimits {
	return &guessLimits{byAddr: map[string]*rate.Limiter{}, overall: rate.NewLimiter(rate.Every(overallBack), triesOverall), out: out}
}

// allowed reports whether addr may try a code now.
func (g *guessLimits) allowed(addr string) bool {
	if isLocalhost(addr) {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.byAddr[addr]
	return (l == nil || l.Tokens() >= 1) && g.overall.Tokens() >= 1
}

// wrongCode counts a wrong code from addr, and tells the teacher in the
// terminal that someone is guessing, at most once a minute.
func (g *guessLimits) wrongCode(addr string) {
	if isLocalhost(addr) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.byAddr[addr]
	if l == nil {
		if len(g.byAddr) > 10000 { // a flood of addresses keeps no more than this
			clear(g.byAddr)
		}
		l = rate.NewLimiter(rate.Every(triesComeBack), triesPerAddr)
		g.byAddr[addr] = l
	}
	l.Allow()
	g.overall.Allow()
	g.wrong++
	if time.Since(g.told) >= tellTheTeacher && g.wrong >= 3 {
		fmt.Fprintf(g.out, "Someone is trying teacher codes: %d wrong ones lately (the last from %s). Guessing is slowed down; your own computer is never held back.\n", g.wrong, addr)
		g.told, g.wrong = time.Now(), 0
	}
}

// tooMany is what a guesser is told.
const tooMany = "too many wrong codes: wait a minute, then type the code the classroom printed"

// isLocalhost reports whether addr, as requestAddr and Client.Addr give
// it, is localhost's: 127.0.0.1, or ::1 (counted by its /64, "::/64").
func isLocalhost(addr string) bool {
	switch addr {
	case "127.0.0.1", "::1", "::/64":
		return true
	}
	return false
}
