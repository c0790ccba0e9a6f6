package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/internal/headless"
)

// TestMain checks that no goroutine outlives the tests: every test shuts
// its servers down and closes its tabs, and the browser's contexts are
// cancelled when TestBrowser ends, which ends chromedp's goroutines too.
// goleak retries for a while, so goroutines that are on their way out
// (chromedp's, net/http's) need no ignore list.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestBrowser runs the browser tests in one headless Chromium, each test
// in tabs of its own: starting a browser is the slowest part of a test.
func TestBrowser(t *testing.T) {
	browser := headless.Browser(t)
	for _, test := range []struct {
		name string
		run  func(*testing.T, context.Context)
	}{
		{"ClassicScript", testClassicScript},
		{"ESModule", testESModule},
		{"ClientFiles", testClientFilesInTheBrowser},
		{"MountedUnderAPrefix", testMountedUnderAPrefix},
		{"ReconnectAfterServerRestart", testReconnectAfterServerRestart},
		{"MessageTooBig", testMessageTooBig},
		{"SilentConnection", testSilentConnection},
		{"KeepaliveWithARealServer", testKeepaliveWithARealServer},
		{"ConnectToAnotherOrigin", testConnectToAnotherOrigin},
		{"PageServerWithoutTheEndpoint", testPageServerWithoutTheEndpoint},
		{"ForgedFrames", testForgedFrames},
		{"JSXBundledOnRequest", testJSXBundledOnRequest},
		{"ResumeAfterABlip", testResumeAfterABlip},
		{"ResumeWindowPassed", testResumeWindowPassed},
		{"ResumeAfterServerRestart", testResumeAfterServerRestart},
		{"ResumeProtocol", testResumeProtocol},
		{"ResumeAfterRateLimitedMessages", testResumeAfterRateLimitedMessages},
	} {
		t.Run(test.name, func(t *testing.T) { test.run(t, browser) })
	}
}

// wait bounds every wait for the page or the servers. A test that works
// takes a fraction of it.
const wait = 5 * time.Second

// pollEvery is how often a wait looks at the page again.
const pollEvery = 15 * time.Millisecond

// quiet silences a server's log unless -v is given.
func quiet() wszero.Option {
	if testing.Verbose() {
		return wszero.WithLogger(slog.Default())
	}
	return wszero.WithLogger(nil)
}

// logSink collects a server's log lines, to check what it said.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// option makes the server log to l.
func (l *logSink) option() wszero.Option {
	return wszero.WithLogger(slog.New(slog.NewTextHandler(l, nil)))
}

// serve serves s on a loopback httptest server, with pages (path → HTML)
// beside it, and shuts both down when the test ends. Start servers before
// opening pages, so that the pages close first.
func serve(t *testing.T, s *wszero.Server, pages map[string]string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent) // no 404 in the console
	})
	for path, html := range pages {
		if strings.HasSuffix(path, "/") {
			path += "{$}" // that path only, not the tree under it
		}
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, html)
		})
	}
	mux.Handle("/", s)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		shutdown(t, s)
		ts.Close()
	})
	return ts
}

// shutdown shuts s down, within wait.
func shutdown(t *testing.T, s *wszero.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("shutting the server down: %v", err)
	}
}

// waitUntil waits, within wait, until done reports true.
func waitUntil(t *testing.T, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", wait, what)
		}
		<-tick.C
	}
}

// page is one browser tab, used by one test (or subtest: see in).
type page struct {
	t *testing.T
	*tab
}

// tab is a browser tab and what its console said.
type tab struct {
	ctx context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
	grew    chan struct{} // closed, and replaced, whenever console grows
}

// in returns the page for use by t, a subtest: its failures are t's.
func (p *page) in(t *testing.T) *page {
	return &page{t: t, tab: p.tab}
}

// openPage opens url in a new tab of the browser, closed when the test
// ends.
func openPage(t *testing.T, browser context.Context, url string) *page {
	t.Helper()
	p := newPage(t, headless.NewTab(t, browser))
	p.navigate(url)
	return p
}

// newPage collects the console of the tab ctx, from now on.
func newPage(t *testing.T, ctx context.Context) *page {
	p := &page{t: t, tab: &tab{ctx: ctx, grew: make(chan struct{})}}
	messages := chromedp.Console(ctx) // subscribes now, before the page loads
	go func() {
		for m, err := range messages {
			if err != nil {
				return // the tab's context ended
			}
			p.mu.Lock()
			p.console = append(p.console, m)
			close(p.grew)
			p.grew = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	return p
}

// navigate loads url in the tab.
func (p *page) navigate(url string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		p.t.Fatalf("opening %s: %v", url, err)
	}
}

// eval evaluates a JavaScript expression in the page, awaiting it when it
// is a promise, and returns its value decoded into T.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := tryEval[T](p, expr)
	if err != nil {
		p.t.Fatalf("evaluating %s: %v\n%s", expr, err, p.consoleText())
	}
	return v
}

func tryEval[T any](p *page, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// peek evaluates an expression without awaiting it, for the waits: they
// look again soon, and must not hang on a promise that never settles.
func peek[T any](p *page, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// run runs JavaScript for its effect, without waiting for a promise it
// returns.
func (p *page) run(js string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](js)); err != nil {
		p.t.Fatalf("running %s: %v\n%s", js, err, p.consoleText())
	}
}

// waitFor waits until the expression is truthy in the page. Evaluation
// errors (the page is reloading, say) count as not yet.
func (p *page) waitFor(expr string) {
	p.t.Helper()
	p.waitForWithin(expr, wait)
}

func (p *page) waitForWithin(expr string, within time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ok, err := peek[bool](p, "Boolean("+expr+")")
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("waited %v for %s (last error: %v)\n%s", within, expr, err, p.consoleText())
		}
		<-tick.C
	}
}

// waitEqual waits until the expression's value, as JSON, equals want.
func (p *page) waitEqual(expr string, want any) {
	p.t.Helper()
	wantJSON, err := json.Marshal(want)
	if err != nil {
		p.t.Fatal(err)
	}
	var wantV any
	_ = json.Unmarshal(wantJSON, &wantV)
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		got, err := peek[any](p, expr)
		if err == nil && reflect.DeepEqual(got, wantV) {
			return
		}
		if time.Now().After(deadline) {
			gotJSON, _ := json.Marshal(got)
			p.t.Fatalf("waited %v for %s to be %s; it is %s (error: %v)\n%s", wait, expr, wantJSON, gotJSON, err, p.consoleText())
		}
		<-tick.C
	}
}

// waitConsole waits until the console has a message of type typ whose
// text contains text, and returns it.
func (p *page) waitConsole(typ chromedp.ConsoleType, text string) chromedp.ConsoleMessage {
	p.t.Helper()
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for {
		p.mu.Lock()
		for _, m := range p.console {
			if m.Type == typ && strings.Contains(m.Text, text) {
				p.mu.Unlock()
				return m
			}
		}
		grew := p.grew
		p.mu.Unlock()
		select {
		case <-grew:
		case <-timeout.C:
			p.t.Fatalf("waited %v for a console %s containing %q\n%s", wait, typ, text, p.consoleText())
		}
	}
}

// consoleHas reports whether the console has said text so far.
func (p *page) consoleHas(typ chromedp.ConsoleType, text string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.console {
		if m.Type == typ && strings.Contains(m.Text, text) {
			return true
		}
	}
	return false
}

// noExceptions fails the test if the page threw anything it did not catch.
func (p *page) noExceptions() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.console {
		if m.IsException() {
			p.t.Errorf("the page threw: %s", m.Text)
		}
	}
}

// consoleText is the console so far, for failure messages.
func (p *page) consoleText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	b.WriteString("the page's console:")
	if len(p.console) == 0 {
		b.WriteString(" (empty)")
	}
	for _, m := range p.console {
		fmt.Fprintf(&b, "\n  %s", m)
	}
	return b.String()
}
