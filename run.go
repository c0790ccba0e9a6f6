package wszero

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wszero/wszero/internal/protocol"
)

// staticDir is the folder RunServer serves, relative to where it runs.
const staticDir = "static"

// shutdownGrace is how long RunServer's Ctrl-C waits for clients to be
// written to and closed.
const shutdownGrace = 5 * time.Second

// RunOption changes what Server.Run serves and prints.
type RunOption func(*runConfig)

// runConfig is what the RunOptions chose.
type runConfig struct {
	handler   http.Handler              // what to serve; nil: the server itself
	banner    func(RunAddresses) string // the lines that say where to open it; nil: Run's own
	secure    bool                      // HTTPS, with teachingTLS's certificate
	teaching  bool                      // RunServer's: a class's own server
	callerDir string                    // the folder of the program's source
	out       io.Writer                 // where Run prints
}

// RunAddresses are the addresses at which a running server can be opened.
type RunAddresses struct {
	Local   string   // on this computer: "http://localhost:8000"
	Network []string // from the other computers of the network: "http://192.168.1.20:8000"
}

// RunHandler makes Run serve h instead of the Server itself: an
// application's own mux, which routes the WebSocket endpoint ("/ws") and
// the browser client ("/wszero.js") to the Server, and its own pages
// elsewhere. Run then looks for no static folder and shows no welcome page.
func RunHandler(h http.Handler) RunOption {
	if h == nil {
		panic("wszero.RunHandler(nil): pass the handler to serve, such as your http.ServeMux")
	}
	return func(c *runConfig) { c.handler = h }
}

// RunBanner replaces the lines Run prints once it listens, which say where
// to open the page, by what banner returns for the addresses it listens
// at. "Press Ctrl-C to stop." follows them.
func RunBanner(banner func(RunAddresses) string) RunOption {
	return func(c *runConfig) { c.banner = banner }
}

// RunTLS makes Run serve HTTPS, with the certificate RunServerTLS uses:
// the one named by WSZERO_TLS_CERT and WSZERO_TLS_KEY, or one it makes.
func RunTLS() RunOption {
	return func(c *runConfig) { c.secure = true }
}

// Run serves s on port the way RunServer serves the default server, until
// Ctrl-C (or SIGTERM), then shuts s down gracefully and returns nil. The
// PORT environment variable, when set, overrides port. Without RunHandler
// it serves s itself: the WebSocket endpoint at /ws, the browser client,
// and the ./static folder (found beside the program's source too) or a
// welcome page. It prints the addresses to open, on this computer and from
// the others on the network.
//
// When s cannot start (the port is taken, say), Run returns an error whose
// text is one line that says why and what to do.
func (s *Server) Run(port int, opts ...RunOption) error {
	cfg := runConfig{out: os.Stdout}
	if _, file, _, ok := runtime.Caller(1); ok {
		cfg.callerDir = filepath.Dir(file)
	}
	for _, o := range opts {
		o(&cfg)
	}
	return s.runUntilSignal(port, cfg)
}

// runUntilSignal runs s until Ctrl-C or SIGTERM.
func (s *Server) runUntilSignal(port int, cfg runConfig) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return s.runUntil(ctx, port, cfg)
}

// runUntil does Run's work until ctx ends.
func (s *Server) runUntil(ctx context.Context, port int, cfg runConfig) error {
	out := cfg.out
	if cfg.teaching {
		s.teaching = true
	}
	port, err := portFromEnv(port, cfg.teaching)
	if err != nil {
		return err
	}
	scheme, tlsNote := "http", ""
	var tlsConfig *tls.Config
	if cfg.secure {
		scheme = "https"
		if tlsConfig, tlsNote, err = teachingTLS(teachingHosts()); err != nil {
			return err
		}
	}
	handler, staticFolder := cfg.handler, ""
	if handler == nil {
		handler = s
		if s.opts.static == nil {
			if dir := findStatic(cfg.callerDir); dir != "" {
				staticFolder = dir
				s.useStaticReporting(dir, func(msg string) { fmt.Fprintln(out, msg) })
				if dir != staticDir {
					fmt.Fprintf(out, "Serving the files in %s\n", dir)
				}
			} else {
				s.welcome = true
				fmt.Fprintf(out, "There is no %q folder here yet, so the page shows how to make one.\n", staticDir)
			}
		}
	}
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return listenError(port, err, cfg.teaching)
	}
	port = l.Addr().(*net.TCPAddr).Port
	addrs := RunAddresses{Local: fmt.Sprintf("%s://localhost:%d", scheme, port)}
	for _, ip := range lanAddresses() {
		addrs.Network = append(addrs.Network, fmt.Sprintf("%s://%s:%d", scheme, ip, port))
	}
	banner := cfg.banner
	if banner == nil {
		banner = defaultBanner
	}
	fmt.Fprint(out, banner(addrs))
	fmt.Fprint(out, tlsNote)
	fmt.Fprintln(out, "Press Ctrl-C to stop.")

	served := make(chan error, 1)
	go func() { served <- s.serve(l, handler, tlsConfig) }()
	watchDone := make(chan struct{})
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer func() {
		stopWatching()
		<-watchDone
	}()
	go func() {
		defer close(watchDone)
		if staticFolder != "" {
			s.reloadOnChange(watchCtx, staticFolder, out)
		}
	}()
	select {
	case err := <-served:
		return fmt.Errorf("wszero stopped: %v", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(out, "\nStopping: saying goodbye to every page…")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		fmt.Fprintf(out, "Some pages did not answer in time (%v); stopped anyway.\n", err)
	}
	<-served
	fmt.Fprintln(out, "Stopped.")
	return nil
}

// defaultBanner says where to open the page.
func defaultBanner(a RunAddresses) string {
	var b strings.Builder
	fmt.Fprintf(&b, "wszero is running. Open this address in a web browser:\n    %s\n", a.Local)
	if len(a.Network) > 0 {
		b.WriteString("Other computers on this network can open:\n")
		for _, u := range a.Network {
			fmt.Fprintf(&b, "    %s\n", u)
		}
	}
	return b.String()
}

// reloadInterval is how often RunServer looks for changed static files.
const reloadInterval = 300 * time.Millisecond

// reloadOnChange tells every open page to reload whenever a file under dir
// changes, until ctx ends.
func (s *Server) reloadOnChange(ctx context.Context, dir string, out io.Writer) {
	last := folderFingerprint(dir)
	tick := time.NewTicker(reloadInterval)
	defer tick.Stop()
	reload := []byte(`{"` + protocol.KeyOp + `":"` + protocol.OpReload + `"}`)
	pm := newPreparedFrame(reload)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if now := folderFingerprint(dir); now != last {
			last = now
			fmt.Fprintln(out, "A file changed: reloading the open pages.")
			s.broadcastFrame(pm, reload)
		}
	}
}

// findStatic returns the static folder to serve: ./static, else the static
// folder beside the program's source (so that "go run ./examples/chat" from
// another folder finds its page), else "".
func findStatic(callerDir string) string {
	for _, dir := range []string{staticDir, filepath.Join(callerDir, staticDir)} {
		if callerDir == "" && dir != staticDir {
			continue
		}
		if info, err := os.Stat(dir); err == nil && info.IsDir() {
			return dir
		}
	}
	return ""
}

// portFromEnv returns $PORT when it is set, else port. teaching says that
// the program calls RunServer, which the advice names.
func portFromEnv(port int, teaching bool) (int, error) {
	if env := os.Getenv("PORT"); strings.TrimSpace(env) != "" {
		// Spaces around the number count for nothing: Windows' cmd keeps the
		// one before && in "set PORT=8001 && go run .".
		p, err := strconv.Atoi(strings.TrimSpace(env))
		if err != nil || p < 0 || p > 65535 {
			return 0, fmt.Errorf("wszero: the PORT environment variable is %q, which is not a port number: set it to a number like 8000, or unset it", env)
		}
		return p, nil
	}
	if port < 0 || port > 65535 {
		return 0, fmt.Errorf("wszero: %d is not a port number: use a number from 1024 to 65535, like %s", port, portAdvice(8000, teaching))
	}
	return port, nil
}

// listenError turns a failure to listen into one line a beginner can act
// on; teaching as in portFromEnv.
func listenError(port int, err error, teaching bool) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("wszero: port %d is already in use: another program (maybe an earlier run of this one) is using it. "+
			"Stop that program with Ctrl-C in its window, or choose another port, like %s", port, portAdvice(otherPort(port), teaching))
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("wszero: no permission to use port %d: ports below 1024 need an administrator. Use a port like %s", port, portAdvice(8000, teaching))
	}
	return fmt.Errorf("wszero: cannot listen on port %d: %v", port, err)
}

// portAdvice shows how to choose port: in the call to RunServer, which a
// teaching program makes itself, or else with the PORT variable, which
// every program that runs a server honours.
func portAdvice(port int, teaching bool) string {
	if teaching {
		return fmt.Sprintf("RunServer(%d)", port)
	}
	return fmt.Sprintf("PORT=%d", port)
}

// otherPort is the port to suggest when port is taken.
func otherPort(port int) int {
	if port >= 65535 || port == 0 {
		return 8001
	}
	return port + 1
}

// lanAddresses lists the machine's IPv4 addresses that other computers on
// the network can reach.
func lanAddresses() []string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ips []string
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip := ipnet.IP.To4()
		if ip == nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
			continue
		}
		ips = append(ips, ip.String())
	}
	return ips
}
