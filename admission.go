package wszero

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
)

// admission counts the connections that are open or being upgraded, in
// total and by address, so that the connection limits can refuse a new one
// before its upgrade.
type admission struct {
	mu    sync.Mutex
	total int
	byIP  map[string]int
}

// admit counts a new connection from ip, or says why it is refused: an HTTP
// status and a reason for the one refused (status 0 when it is admitted).
// An admitted connection is released with release once it has ended.
func (s *Server) admit(ip string) (status int, reason string) {
	a := &s.admission
	maxTotal, maxIP := s.opts.maxConns, s.opts.maxConnsPerIP
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case maxTotal > 0 && a.total >= maxTotal:
		return http.StatusServiceUnavailable, fmt.Sprintf(
			"This server is full: %d clients are connected, the most it takes (wszero.WithMaxConnections). Try again later.", maxTotal)
	case maxIP > 0 && a.byIP[ip] >= maxIP:
		return http.StatusTooManyRequests, fmt.Sprintf(
			"Too many connections from your address (%s): %d are open, the most one address may have (wszero.WithMaxConnectionsPerIP). Close some pages, or try again later.", ip, maxIP)
	}
	a.total++
	if maxIP > 0 {
		if a.byIP == nil {
			a.byIP = make(map[string]int)
		}
		a.byIP[ip]++
	}
	return 0, ""
}

// release forgets a connection that admit counted.
func (s *Server) release(ip string) {
	a := &s.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
	if n, ok := a.byIP[ip]; ok {
		if n <= 1 {
			delete(a.byIP, ip)
		} else {
			a.byIP[ip] = n - 1
		}
	}
}

// refuse answers a request that a limit or a check turns away, and logs
// why at level (at most a line a second for each kind of refusal).
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, reason string, level slog.Level, logMsg string, args ...any) {
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "5")
	}
	http.Error(w, reason, status)
	s.logThrottled(level, logMsg, append(args, "status", status, "remote", r.RemoteAddr)...)
}

// clientIP is the address that WithMaxConnectionsPerIP counts: the peer's,
// or, when the peer is a trusted proxy, the client's as X-Forwarded-For
// says. An IPv6 address counts by its /64 network.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host // not an IP address: a unix socket, say
	}
	addr = addr.Unmap()
	if s.trusted(addr) {
		addr = s.forwardedFor(r, addr)
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// trusted reports whether addr is one of WithTrustedProxies.
func (s *Server) trusted(addr netip.Addr) bool {
	for _, p := range s.opts.trustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// forwardedFor walks X-Forwarded-For from the right, past the trusted
// proxies, to the client that the nearest untrusted hop says it served. An
// entry that is not an address ends the walk at the hop that wrote it.
func (s *Server) forwardedFor(r *http.Request, proxy netip.Addr) netip.Addr {
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	client := proxy
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		addr, err := netip.ParseAddr(hop)
		if err != nil {
			ap, err := netip.ParseAddrPort(hop)
			if err != nil {
				return client
			}
			addr = ap.Addr()
		}
		client = addr.Unmap()
		if !s.trusted(client) {
			return client
		}
	}
	return client
}
