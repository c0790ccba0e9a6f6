// Package lessontest runs a classroom program (a lesson, or the classroom
// app) the way a child runs it, with go run ., and drives its page in
// headless Chromium.
//
// A lesson's test binary is also the lesson's program: its TestMain calls
// Main, which runs the program's main function when the test starts itself
// as a server process (with PORT=0), and the tests otherwise. So a lesson's
// main.go stays as a child wrote it, with package-level wszero.On and
// wszero.RunServer(8000).
package lessontest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wszero/wszero/internal/cutproxy"
	"github.com/wszero/wszero/internal/headless"
)

// Wait bounds every wait of these helpers.
const Wait = 10 * time.Second

// programEnv tells the test binary to be the program.
const programEnv = "WSZERO_LESSONTEST_PROGRAM"

// Main is a lesson test's TestMain: it runs program when the binary was
// started by Start, and the tests otherwise.
func Main(m *testing.M, program func()) {
	if os.Getenv(programEnv) == "1" {
		program()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Program is the lesson's program, running as a process of its own.
type Program struct {
	cmd    *exec.Cmd
	out    *buffer // stdout and stderr together
	lines  chan string
	done   chan struct{}
	URL    string // http://127.0.0.1:PORT/, once Start returns
	Port   string
	exited bool
}

type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var localURL = regexp.MustCompile(`http://localhost:(\d+)`)

// Launch starts the program in dir (the test's folder when "") with the
// environment variable PORT set to port, and env ("NAME=value") added. It
// does not wait for it to listen. The process is stopped when the test
// ends.
func Launch(t testing.TB, dir, port string, env ...string) *Program {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), programEnv+"=1", "PORT="+port), env...)
	p := &Program{cmd: cmd, out: &buffer{}, lines: make(chan string, 1000), done: make(chan struct{})}
	// stdout and stderr both, as the terminal shows them, line by line.
	pipe, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close() // the child has its own copy
	if err != nil {
		pipe.Close()
		t.Fatal(err)
	}
	go func() {
		defer pipe.Close()
		sc := bufio.NewScanner(io.TeeReader(pipe, p.out))
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// Start starts the program on a free port and waits until it listens.
func Start(t testing.TB, env ...string) *Program {
	t.Helper()
	p := Launch(t, "", "0", env...)
	deadline := time.After(Wait)
	for {
		select {
		case line := <-p.lines:
			if m := localURL.FindStringSubmatch(line); m != nil {
				p.Port = m[1]
			}
			if line == "Press Ctrl-C to stop." && p.Port != "" {
				p.URL = "http://127.0.0.1:" + p.Port + "/"
				return p
			}
		case <-p.done:
			t.Fatalf("the program stopped before it was ready; it printed:\n%s", p.out)
		case <-deadline:
			t.Fatalf("the program did not say it was ready within %v; it printed:\n%s", Wait, p.out)
		}
	}
}

// WaitLine waits until the program prints a line that matches re, and
// returns the line.
func (p *Program) WaitLine(t testing.TB, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.After(Wait)
	for {
		select {
		case line := <-p.lines:
			if re.MatchString(line) {
				return line
			}
		case <-deadline:
			t.Fatalf("the program printed no line matching %v within %v; it printed:\n%s", re, Wait, p.out)
		}
	}
}

// Output returns everything the program has printed so far.
func (p *Program) Output() string { return p.out.String() }

// WaitExit waits for the program to end by itself and returns its exit
// status.
func (p *Program) WaitExit(t testing.TB) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(Wait):
		t.Fatalf("the program did not stop within %v; it printed:\n%s", Wait, p.out)
	}
	return -1
}

// stop asks the program to stop, as Ctrl-C does, and kills it if it does
// not within Wait.
func (p *Program) stop(t testing.TB) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT) // our own child, by its PID
	select {
	case <-p.done:
	case <-time.After(Wait):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("the program did not stop on Ctrl-C within %v; it printed:\n%s", Wait, p.out)
	}
}

// Page is one browser tab.
type Page struct {
	t   testing.TB
	ctx context.Context
}

// Browser starts headless Chromium for the test (or skips the test where
// there is none, except under CI=true).
func Browser(t testing.TB) context.Context {
	t.Helper()
	return headless.Browser(t)
}

// Open opens url in a new tab of browser and waits until its connection to
// the server is open.
func Open(t testing.TB, browser context.Context, url string) *Page {
	t.Helper()
	p := &Page{t: t, ctx: headless.NewTab(t, browser)}
	p.Do(chromedp.Navigate(url))
	p.WaitFor(`window.wszero && wszero.connectionState() === "open"`)
	return p
}

// OpenFile opens a page's file as a child double-clicking it would: with
// no server behind it.
func OpenFile(t testing.TB, browser context.Context, path string) *Page {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	p := &Page{t: t, ctx: headless.NewTab(t, browser)}
	p.Do(chromedp.Navigate("file://" + filepath.ToSlash(abs)))
	return p
}

// Close closes the page's tab, as a student closing it would.
func (p *Page) Close() {
	p.t.Helper()
	if err := chromedp.Cancel(p.ctx); err != nil {
		p.t.Fatal(err)
	}
}

// In returns the page for use by t, a subtest.
func (p *Page) In(t testing.TB) *Page {
	c := *p
	c.t = t
	return &c
}

// Context returns the tab's chromedp context.
func (p *Page) Context() context.Context { return p.ctx }

// Do runs actions in the tab, within Wait.
func (p *Page) Do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Wait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatal(err)
	}
}

// Eval returns the value of a JavaScript expression in the tab (what a
// promise resolves to, for a promise).
func Eval[T any](p *Page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Wait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// Run runs a JavaScript statement in the tab.
func (p *Page) Run(js string) {
	p.t.Helper()
	p.Do(chromedp.Evaluate[chromedp.Void](js))
}

// WaitFor waits until a JavaScript expression is truthy in the tab.
func (p *Page) WaitFor(expr string) {
	p.t.Helper()
	deadline := time.Now().Add(Wait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(p.ctx, time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("Boolean("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			body, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
			p.t.Fatalf("waited %v for %s (error: %v); the page shows:\n%s", Wait, expr, err, body)
		}
		<-tick.C
	}
}

// WaitShown waits until the element selected by css is rendered where a
// person sees it, or, with shown false, until it is not: what is on the
// screen, not the hidden attribute (see headless.ShownExpr).
func (p *Page) WaitShown(css string, shown bool) {
	p.t.Helper()
	expr := headless.ShownExpr(css)
	if !shown {
		expr = "!" + expr
	}
	p.WaitFor(expr)
}

// WaitText waits until the element selected by css shows text.
func (p *Page) WaitText(css, text string) {
	p.t.Helper()
	p.WaitFor(fmt.Sprintf(`document.querySelector(%q)?.textContent.trim() === %q`, css, text))
}

// WaitContains waits until the element selected by css has text in it.
func (p *Page) WaitContains(css, text string) {
	p.t.Helper()
	p.WaitFor(fmt.Sprintf(`(document.querySelector(%q)?.textContent || "").includes(%q)`, css, text))
}

// Type replaces the value of the input selected by css with text, typed
// key by key.
func (p *Page) Type(css, text string) {
	p.t.Helper()
	p.Do(
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = ""`, css)),
		chromedp.SendKeys(chromedp.CSS(css), text),
	)
}

// Click clicks the element selected by css.
func (p *Page) Click(css string) {
	p.t.Helper()
	p.Do(chromedp.Click(chromedp.CSS(css)))
}

// Behind starts a proxy in front of the program, which Blip cuts to make a
// network blip; open the pages at the URL it returns.
func Behind(t testing.TB, p *Program) (*cutproxy.Proxy, string) {
	t.Helper()
	proxy := cutproxy.Start(t, "127.0.0.1:"+p.Port)
	return proxy, "http://" + proxy.Addr() + "/"
}

// Blip takes the network between the pages and the program down until
// every page has seen its connection drop, runs during (what a child does
// meanwhile), and brings the network back; then it waits until every page
// has resumed its session: the server kept the player, and sent what was
// missed.
func Blip(proxy *cutproxy.Proxy, during func(), pages ...*Page) {
	for _, p := range pages {
		p.Run(`window.resumes = 0; wszero.onState((s, d) => { if (s === "open" && d.resumed) resumes++ })`)
	}
	proxy.Down()
	for _, p := range pages {
		p.WaitFor(`wszero.connectionState() !== "open"`)
	}
	if during != nil {
		during()
	}
	proxy.Up()
	for _, p := range pages {
		p.WaitFor(`resumes === 1 && wszero.connectionState() === "open"`)
	}
}
