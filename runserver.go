package wszero

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// staticDir is the folder RunServer serves, relative to where it runs.
const staticDir = "static"

// shutdownGrace is how long RunServer's Ctrl-C waits for clients to be
// written to and closed.
const shutdownGrace = 5 * time.Second

// RunServer serves the default server on port until Ctrl-C (or SIGTERM),
// then shuts down gracefully. The PORT environment variable, when set,
// overrides port. It serves the WebSocket endpoint at /ws and the files of
// the ./static folder (index.html at /), or a welcome page that says how to
// start when there is no such folder. It prints the addresses to open, on
// this computer and from others on the network.
//
// When the server cannot start (the port is taken, say), RunServer prints
// one line saying why and what to do, and exits with status 1.
func RunServer(port int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	callerDir := ""
	if _, file, _, ok := runtime.Caller(1); ok {
		callerDir = filepath.Dir(file)
	}
	if err := Default().runServer(ctx, port, callerDir, os.Stdout, false); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// RunServerTLS is RunServer over HTTPS, for pages that need a secure
// context (the camera, the microphone, the clipboard, service workers) when
// other computers of the network open them. The browser client connects
// with wss:// by itself.
//
// With no certificate given, RunServerTLS makes a self-signed one for this
// computer's names and network addresses, keeps it in the user's cache
// folder for the next runs, and prints its fingerprint: browsers warn about
// such a certificate until someone checks the fingerprint and proceeds.
// Set the environment variables WSZERO_TLS_CERT and WSZERO_TLS_KEY to the
// PEM files of a certificate and its key to serve with those instead.
func RunServerTLS(port int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	callerDir := ""
	if _, file, _, ok := runtime.Caller(1); ok {
		callerDir = filepath.Dir(file)
	}
	if err := Default().runServer(ctx, port, callerDir, os.Stdout, true); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// runServer does RunServer's work (RunServerTLS's when secure) until ctx
// ends, printing to out. callerDir is the folder of the program's source,
// searched for a static folder when the current folder has none.
func (s *Server) runServer(ctx context.Context, port int, callerDir string, out io.Writer, secure bool) error {
	s.teaching = true
	port, err := portFromEnv(port)
	if err != nil {
		return err
	}
	scheme, tlsNote := "http", ""
	var tlsConfig *tls.Config
	if secure {
		scheme = "https"
		if tlsConfig, tlsNote, err = teachingTLS(teachingHosts()); err != nil {
			return err
		}
	}
	staticFolder := ""
	if s.opts.static == nil {
		if dir := findStatic(callerDir); dir != "" {
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
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return listenError(port, err)
	}
	port = l.Addr().(*net.TCPAddr).Port
	fmt.Fprintf(out, "wszero is running. Open this address in a web browser:\n    %s://localhost:%d\n", scheme, port)
	if ips := lanAddresses(); len(ips) > 0 {
		fmt.Fprintln(out, "Other computers on this network can open:")
		for _, ip := range ips {
			fmt.Fprintf(out, "    %s://%s:%d\n", scheme, ip, port)
		}
	}
	fmt.Fprint(out, tlsNote)
	fmt.Fprintln(out, "Press Ctrl-C to stop.")

	served := make(chan error, 1)
	go func() { served <- s.serve(l, tlsConfig) }()
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

// reloadInterval is how often RunServer looks for changed static files.
const reloadInterval = 300 * time.Millisecond

// reloadOnChange tells every open page to reload whenever a file under dir
// changes, until ctx ends.
func (s *Server) reloadOnChange(ctx context.Context, dir string, out io.Writer) {
	last := folderFingerprint(dir)
	tick := time.NewTicker(reloadInterval)
	defer tick.Stop()
	reload := []byte(`{"op":"` + opReload + `"}`)
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

// portFromEnv returns $PORT when it is set, else port.
func portFromEnv(port int) (int, error) {
	if env := os.Getenv("PORT"); env != "" {
		p, err := strconv.Atoi(env)
		if err != nil || p < 0 || p > 65535 {
			return 0, fmt.Errorf("wszero: the PORT environment variable is %q, which is not a port number: set it to a number like 8000, or unset it", env)
		}
		return p, nil
	}
	if port < 0 || port > 65535 {
		return 0, fmt.Errorf("wszero: %d is not a port number: use a number from 1024 to 65535, like RunServer(8000)", port)
	}
	return port, nil
}

// listenError turns a failure to listen into one line a beginner can act on.
func listenError(port int, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("wszero: port %d is already in use: another program (maybe an earlier run of this one) is using it. "+
			"Stop that program with Ctrl-C in its window, or choose another port, like RunServer(%d)", port, otherPort(port))
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("wszero: no permission to use port %d: ports below 1024 need an administrator. Use a port like RunServer(8000)", port)
	}
	return fmt.Errorf("wszero: cannot listen on port %d: %v", port, err)
}

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

// serveWelcome shows what to create when there is no static folder.
func serveWelcome(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, welcomePage)
}

var welcomePage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>wszero is running</title>
<style>body{font:18px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}
pre{background:#f3f3f3;padding:1rem;border-radius:.5rem;overflow:auto}code{font-size:16px}</style></head>
<body>
<h1>wszero is running 🎉</h1>
<p>Your server works. Now give it a page: make a folder called <code>static</code> next to your
<code>main.go</code>, and put a file called <code>index.html</code> in it, like this one:</p>
<pre><code>` + html.EscapeString(`<!doctype html>
<script src="/wszero.js"></script>
<input id="text"> <button onclick="send()">Send</button>
<ul id="list"></ul>
<script>
  function send() { send_message({op: "announce", text: text.value}) }
  HANDLERS.announce = function (msg) {
    const li = document.createElement("li")
    li.textContent = msg.text
    list.append(li)
  }
</script>`) + `</code></pre>
<p>Your <code>main.go</code> needs a handler for <code>announce</code>:</p>
<pre><code>` + html.EscapeString(`wszero.On("announce", func(c *wszero.Client, p struct{ Text string }) {
	wszero.Broadcast("announce", wszero.Params{"text": p.Text})
})
wszero.RunServer(8000)`) + `</code></pre>
<p>Then stop the server with Ctrl-C, start it again, and reload this page.</p>
</body></html>
`
