package wszero

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wszero/wszero/internal/headless"
)

// The RunServer tests run the test binary itself as the server program, the
// way os/exec's own tests do, because RunServer blocks, handles signals and
// exits the process.
const helperEnv = "WSZERO_RUNSERVER_HELPER"

// helperTLSEnv makes the helper call RunServerTLS instead of RunServer.
const helperTLSEnv = "WSZERO_RUNSERVER_TLS"

// helperAppEnv makes the helper an application of its own: a Server from
// New, with its own mux and banner, served by Server.Run.
const helperAppEnv = "WSZERO_RUN_APP"

// TestRunServerHelper is the program the RunServer tests start; it does
// nothing in a normal test run.
func TestRunServerHelper(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("started by the RunServer tests only")
	}
	if os.Getenv(helperAppEnv) == "1" {
		runApp()
		os.Exit(0)
	}
	On("connect", func(c *Client) { _ = c.Send("hello", Params{"id": c.ID()}) })
	On("disconnect", func(c *Client) { fmt.Println("disconnect handler ran") })
	On("echo", func(c *Client, p Params) Params { return p })
	On("crash", func(c *Client, p Params) { _ = p["name"].(string) })
	if os.Getenv(helperTLSEnv) == "1" {
		RunServerTLS(8443)
	} else {
		RunServer(8000)
	}
	os.Exit(0) // skip goleak: this process is the server program, not a test
}

// runApp is an application served by Server.Run: its own mux routes /ws
// and /wszero.js to the Server and serves a page of its own.
func runApp() {
	s := New(WithLogger(nil))
	s.On("crash", func(c *Client, p Params) { _ = p["name"].(string) })
	s.On("disconnect", func(c *Client) { fmt.Println("the app's disconnect handler ran") })
	mux := http.NewServeMux()
	mux.Handle("/ws", s)
	mux.Handle("/wszero.js", s)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "the app's own page") })
	err := s.Run(8000, RunHandler(mux), RunBanner(func(a RunAddresses) string {
		return fmt.Sprintf("The app is open at %s (and %d network addresses)\n", a.Local, len(a.Network))
	}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// serverProcess is a running RunServer helper.
type serverProcess struct {
	cmd    *exec.Cmd
	stdout *lockedBuffer
	stderr *lockedBuffer
	lines  chan string
	done   chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServerProcess runs the helper in dir with PORT=port, and env
// ("NAME=value") added to its environment.
func startServerProcess(t *testing.T, dir, port string, env ...string) *serverProcess {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^TestRunServerHelper$")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), helperEnv+"=1", "PORT="+port), env...)
	p := &serverProcess{cmd: cmd, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, lines: make(chan string, 100), done: make(chan error, 1)}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = p.stderr
	require.NoError(t, cmd.Start())
	go func() {
		sc := bufio.NewScanner(io.TeeReader(out, p.stdout))
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill() // our own child, by its PID
			<-p.done
		}
	})
	return p
}

// waitExit waits for the process to end and returns its exit code.
func (p *serverProcess) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(testTimeout * 2):
		t.Fatalf("the server process did not exit; stdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
	}
	return -1
}

var localURL = regexp.MustCompile(`https?://localhost:(\d+)`)

// waitForPort reads the process's output until it has printed its local
// address and says it is ready, and returns the port.
func (p *serverProcess) waitForPort(t *testing.T) string {
	t.Helper()
	deadline := time.After(testTimeout * 2)
	port := ""
	for {
		select {
		case line := <-p.lines:
			if m := localURL.FindStringSubmatch(line); m != nil {
				port = m[1]
			}
			if line == "Press Ctrl-C to stop." && port != "" {
				return port
			}
		case <-deadline:
			t.Fatalf("the server did not print its address; stdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
		}
	}
}

// waitForLine reads the process's output until a line contains text.
func (p *serverProcess) waitForLine(t *testing.T, text string) {
	t.Helper()
	deadline := time.After(testTimeout * 2)
	for {
		select {
		case line := <-p.lines:
			if strings.Contains(line, text) {
				return
			}
		case <-deadline:
			t.Fatalf("the server did not print %q; stdout:\n%s\nstderr:\n%s", text, p.stdout, p.stderr)
		}
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: testTimeout}
	resp, err := client.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestRunServerServesWelcomePageAndShutsDownOnCtrlC(t *testing.T) {
	p := startServerProcess(t, t.TempDir(), "0")
	port := p.waitForPort(t)
	base := "http://127.0.0.1:" + port

	status, body := httpGet(t, base+"/")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "make a folder called <code>static</code>")
	require.Contains(t, p.stdout.String(), `There is no "static" folder here yet`)
	require.Contains(t, p.stdout.String(), "Press Ctrl-C to stop.")

	conn, _, err := websocket.DefaultDialer.Dial("ws://127.0.0.1:"+port+"/ws", nil)
	require.NoError(t, err)
	defer conn.Close()
	pc := &peer{t: t, conn: conn}
	require.NotEmpty(t, pc.expect("hello")["id"])
	require.Equal(t, map[string]any{"op": "_reply", "_ref": 1.0, "result": map[string]any{"x": 1.0}},
		pc.call(1, map[string]any{"op": "echo", "x": 1}))

	// A class's own server tells the child at the page why a handler crashed.
	require.Equal(t, map[string]any{"op": "error", "_ref": 2.0, "for": "crash",
		"msg": "crash crashed on the server: interface conversion: interface {} is nil, not string. " +
			`Something was empty: c.Get gives nothing (nil) for a key that c.Set has not stored yet, for example when "crash" runs before the message that sets it. ` +
			`Check it first: v, ok := c.Get("…").(string)`},
		pc.call(2, map[string]any{"op": "crash"}))

	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	ce := pc.closeErr()
	require.Equal(t, websocket.CloseGoingAway, ce.Code)
	require.Equal(t, "the server is shutting down", ce.Text)
	require.Equal(t, 0, p.waitExit(t), "stderr: %s", p.stderr)
	out := p.stdout.String()
	require.Contains(t, out, "disconnect handler ran")
	require.Contains(t, out, "Stopped.")
}

func TestRunServerServesStaticFolder(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "static"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "static", "index.html"), []byte("<h1>my page</h1>"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "static", "app.js"), []byte("let x = 1"), 0o644))
	p := startServerProcess(t, dir, "0")
	port := p.waitForPort(t)
	base := "http://127.0.0.1:" + port

	status, body := httpGet(t, base+"/")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "<h1>my page</h1>", body)
	status, body = httpGet(t, base+"/app.js")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "let x = 1", body)
	require.NotContains(t, p.stdout.String(), "no \"static\" folder")

	// TypeScript is bundled on request; a build error is printed in the terminal.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "static", "app.ts"), []byte("const n: number = 2\nconsole.log(n * 21)\n"), 0o644))
	status, body = httpGet(t, base+"/app.ts")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "console.log(")
	require.NotContains(t, body, ": number")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "static", "broken.ts"), []byte("let x = ;\n"), 0o644))
	_, body = httpGet(t, base+"/broken.ts")
	require.Contains(t, body, "wszero-build-error")
	p.waitForLine(t, "broken.ts does not build")

	// A changed file reloads the open pages.
	conn, _, err := websocket.DefaultDialer.Dial("ws://127.0.0.1:"+port+"/ws", nil)
	require.NoError(t, err)
	defer conn.Close()
	pc := &peer{t: t, conn: conn}
	pc.expect("hello") // connected
	require.NoError(t, os.WriteFile(filepath.Join(dir, "static", "index.html"), []byte("<h1>my new page</h1>"), 0o644))
	require.Equal(t, map[string]any{"op": "_reload"}, pc.expect("_reload"))
	p.waitForLine(t, "A file changed: reloading the open pages.")

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, p.waitExit(t))
}

// TestServerRunServesTheAppsHandler: Server.Run serves an application's
// own mux, prints its banner, says what to do when the port is taken, and
// shuts down on Ctrl-C, the way RunServer does.
func TestServerRunServesTheAppsHandler(t *testing.T) {
	p := startServerProcess(t, t.TempDir(), "0", helperAppEnv+"=1")
	port := p.waitForPort(t)
	require.Regexp(t, `^The app is open at http://localhost:\d+ \(and \d+ network addresses\)\nPress Ctrl-C to stop.\n$`, p.stdout.String(),
		"the banner replaces RunServer's lines")
	base := "http://127.0.0.1:" + port
	status, body := httpGet(t, base+"/")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "the app's own page", body)
	status, body = httpGet(t, base+"/wszero.js")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "HANDLERS")
	status, _ = httpGet(t, base+"/index.html")
	require.Equal(t, http.StatusNotFound, status, "no static folder, no welcome page: the mux decides")

	conn, _, err := websocket.DefaultDialer.Dial("ws://127.0.0.1:"+port+"/ws", nil)
	require.NoError(t, err)
	defer conn.Close()
	pc := &peer{t: t, conn: conn}
	// Not a class's server: the crash's why stays in the log.
	require.Equal(t, "crash crashed on the server: the server's log says where and why",
		pc.call(1, map[string]any{"op": "crash"})["msg"])

	t.Run("a port in use", func(t *testing.T) {
		second := startServerProcess(t, t.TempDir(), port, helperAppEnv+"=1")
		require.Equal(t, 1, second.waitExit(t))
		next, err := strconv.Atoi(port)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("wszero: port %s is already in use: another program (maybe an earlier run of this one) is using it. "+
			"Stop that program with Ctrl-C in its window, or choose another port, like PORT=%d", port, next+1),
			strings.TrimSpace(second.stderr.String()))
	})

	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	require.Equal(t, websocket.CloseGoingAway, pc.closeErr().Code)
	require.Equal(t, 0, p.waitExit(t), "stderr: %s", p.stderr)
	require.Contains(t, p.stdout.String(), "the app's disconnect handler ran")
	require.Contains(t, p.stdout.String(), "Stopped.")
}

func TestRunServerPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", ":0")
	require.NoError(t, err)
	defer l.Close()
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)

	p := startServerProcess(t, t.TempDir(), port)
	require.Equal(t, 1, p.waitExit(t))
	errText := strings.TrimSpace(p.stderr.String())
	require.Equal(t, fmt.Sprintf("wszero: port %s is already in use: another program (maybe an earlier run of this one) is using it. "+
		"Stop that program with Ctrl-C in its window, or choose another port, like RunServer(%d)", port, l.Addr().(*net.TCPAddr).Port+1), errText)
	require.Equal(t, 1, strings.Count(errText, "\n")+1, "one line")
}

func TestRunServerBadPortVariable(t *testing.T) {
	p := startServerProcess(t, t.TempDir(), "eighty")
	require.Equal(t, 1, p.waitExit(t))
	require.Equal(t, `wszero: the PORT environment variable is "eighty", which is not a port number: set it to a number like 8000, or unset it`,
		strings.TrimSpace(p.stderr.String()))
}

func TestPortFromEnv(t *testing.T) {
	t.Setenv("PORT", "")
	port, err := portFromEnv(8000, true)
	require.NoError(t, err)
	require.Equal(t, 8000, port)

	t.Setenv("PORT", "9123")
	port, err = portFromEnv(8000, true)
	require.NoError(t, err)
	require.Equal(t, 9123, port, "PORT overrides the argument")

	t.Setenv("PORT", "8001 ") // as Windows' cmd leaves it after "set PORT=8001 && …"
	port, err = portFromEnv(8000, true)
	require.NoError(t, err)
	require.Equal(t, 8001, port)

	t.Setenv("PORT", "70000")
	_, err = portFromEnv(8000, true)
	require.ErrorContains(t, err, `"70000", which is not a port number`)

	t.Setenv("PORT", "")
	_, err = portFromEnv(-1, true)
	require.EqualError(t, err, "wszero: -1 is not a port number: use a number from 1024 to 65535, like RunServer(8000)")
}

func TestListenErrorNoPermission(t *testing.T) {
	err := listenError(80, &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)}, true)
	require.EqualError(t, err, "wszero: no permission to use port 80: ports below 1024 need an administrator. Use a port like RunServer(8000)")
}

func TestLANAddressesAreReachableIPv4(t *testing.T) {
	for _, a := range lanAddresses() {
		ip := net.ParseIP(a)
		require.NotNil(t, ip.To4(), a)
		require.False(t, ip.IsLoopback(), a)
	}
}

// TestRunServerReloadsTheBrowser opens a RunServer page in headless
// Chromium, changes the page on disk, and waits for the page to show the
// new version by itself: the server's _reload reaches the browser client,
// which reloads.
func TestRunServerReloadsTheBrowser(t *testing.T) {
	dir := t.TempDir()
	index := filepath.Join(dir, "static", "index.html")
	require.NoError(t, os.Mkdir(filepath.Dir(index), 0o755))
	page := func(version string) []byte {
		return []byte(`<!doctype html><title>reload</title>
<script src="/wszero.js"></script>
<p id="version">` + version + `</p>
<script>window.loadedAt = performance.timeOrigin</script>`)
	}
	// Both versions carry times within one second, as when a file is saved
	// twice in quick succession: Last-Modified (whole seconds) cannot tell
	// them apart, so the reloaded page must not come from the browser's cache.
	second := time.Now().Truncate(time.Second)
	require.NoError(t, os.WriteFile(index, page("the first version"), 0o644))
	require.NoError(t, os.Chtimes(index, second, second.Add(100*time.Millisecond)))
	p := startServerProcess(t, dir, "0")
	port := p.waitForPort(t)

	ctx := headless.Browser(t) // closed before the server process is killed
	inPage := func(expr string) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return chromedp.Run(ctx, chromedp.Evaluate[bool]("Boolean("+expr+")"))
	}
	waitInPage := func(expr string) {
		t.Helper()
		// Twice the usual bound, as for the process: a reload on a busy
		// machine can keep the page from answering for seconds.
		deadline := time.Now().Add(testTimeout * 2)
		tick := time.NewTicker(15 * time.Millisecond)
		defer tick.Stop()
		for {
			ok, err := inPage(expr) // errors while the page reloads count as not yet
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("waited %v for %s (last error: %v); the server printed:\n%s", testTimeout*2, expr, err, p.stdout)
			}
			<-tick.C
		}
	}
	nav, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	require.NoError(t, chromedp.Do(nav, chromedp.Navigate("http://127.0.0.1:"+port+"/")))
	// Connected: from now on the page hears the server's _reload.
	waitInPage(`document.getElementById("version").textContent === "the first version" && wszero.connectionState() === "open"`)
	firstLoad, err := chromedp.Run(nav, chromedp.Evaluate[float64](`window.loadedAt`))
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(index, page("the second, longer version"), 0o644))
	require.NoError(t, os.Chtimes(index, second, second.Add(200*time.Millisecond)))
	waitInPage(`document.getElementById("version")?.textContent === "the second, longer version"`)
	p.waitForLine(t, "A file changed: reloading the open pages.")
	secondLoad, err := chromedp.Run(nav, chromedp.Evaluate[float64](`window.loadedAt`))
	require.NoError(t, err)
	require.Greater(t, secondLoad, firstLoad, "the page was loaded again")
}
