package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/brokertest"
	"github.com/wszero/wszero/client"
	"github.com/wszero/wszero/internal/cutproxy"
	"github.com/wszero/wszero/internal/headless"
	"github.com/wszero/wszero/wszerotest"
)

// TestMain checks that no goroutine outlives the tests: the servers, the
// workers, the proxy and the browser are all stopped by their tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wait bounds every wait of the tests.
const wait = 5 * time.Second

// startServer serves the example's handlers, and its page, on a loopback
// address until the test ends.
func startServer(t *testing.T, opts ...wszero.Option) (*wszero.Server, *wszerotest.Server) {
	t.Helper()
	log := wszero.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if testing.Verbose() {
		log = wszero.WithLogger(slog.Default())
	}
	s := wszero.New(append([]wszero.Option{wszero.WithStatic("static"), log}, opts...)...)
	addHandlers(s)
	return s, wszerotest.NewServer(t, s)
}

// output is what a worker prints, kept for the test to read.
type output struct {
	mu    sync.Mutex
	lines []string
	part  string
}

// Write keeps p, line by line.
func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.part += string(p)
	for {
		line, rest, ok := strings.Cut(o.part, "\n")
		if !ok {
			return len(p), nil
		}
		o.lines = append(o.lines, line)
		o.part = rest
	}
}

// jobs returns how many jobs the worker says it did.
func (o *output) jobs() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, line := range o.lines {
		if strings.HasPrefix(line, "job: ") {
			n++
		}
	}
	return n
}

// worker is a worker program of the example, running in the test.
type worker struct {
	conn *client.Conn
	out  *output
}

// startTestWorker starts a worker that connects to url, as the example's
// -worker does, and stops it when the test ends.
func startTestWorker(t *testing.T, url string) *worker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	w := &worker{out: &output{}}
	conn, err := startWorker(ctx, url, "", w.out)
	require.NoError(t, err)
	w.conn = conn
	t.Cleanup(w.stop)
	return w
}

// stop closes the worker's connection and waits until its handlers have
// stopped.
func (w *worker) stop() {
	w.conn.Close()
	select {
	case <-w.conn.Done():
	case <-time.After(wait):
		panic("a worker's handler was still running after Close")
	}
}

// waitForWorkers waits until the server tells c that the workers are
// exactly names.
func waitForWorkers(t *testing.T, c *wszerotest.Client, names ...string) {
	t.Helper()
	for {
		got := c.Expect("workers")["names"].([]any)
		if len(got) == len(names) && slices.Equal(anyStrings(got), names) {
			return
		}
	}
}

// anyStrings returns list, a JSON list decoded into []any, as strings.
func anyStrings(list []any) []string {
	s := make([]string, len(list))
	for i, v := range list {
		s[i] = fmt.Sprint(v)
	}
	return s
}

// asker is a page, played by the Go client: it asks for jobs and collects
// their results.
type asker struct {
	*wszerotest.Client
	last int
}

// ask sends a job and returns its number.
func (a *asker) ask(kind, text string) int {
	a.last++
	a.Send("job", wszero.Params{"kind": kind, "text": text, "n": a.last})
	return a.last
}

// result waits for a result, and returns which job it answers, the answer
// and the worker that did it.
func (a *asker) result() (n int, answer, worker string) {
	p := a.Expect("result")
	return int(p["n"].(float64)), p["answer"].(string), p["worker"].(string)
}

// TestJobsTakeTurns has three workers and two pages asking at once: every
// worker does a third of the jobs, and every result comes back to the page
// that asked for it, and to no other.
func TestJobsTakeTurns(t *testing.T) {
	_, srv := startServer(t)
	ann, bob := &asker{Client: srv.Dial()}, &asker{Client: srv.Dial()}
	waitForWorkers(t, ann.Client)
	workers := []*worker{startTestWorker(t, srv.URL), startTestWorker(t, srv.URL), startTestWorker(t, srv.URL)}
	waitForWorkers(t, ann.Client, "worker 1", "worker 2", "worker 3")

	const perAsker = 6 // jobs each page asks for: 12 in all, 4 for each worker
	for i := range perAsker {
		ann.ask("shout", fmt.Sprintf("ann's job %d", i+1))
		bob.ask("reverse", fmt.Sprintf("bob's job %d", i+1))
	}
	done := map[string]int{}
	for i := range perAsker {
		n, answer, worker := ann.result()
		require.Equal(t, fmt.Sprintf("ANN'S JOB %d", n), answer, "ann's result %d", i)
		done[worker]++
		n, answer, worker = bob.result()
		require.Equal(t, doJob("reverse", fmt.Sprintf("bob's job %d", n)), answer, "bob's result %d", i)
		done[worker]++
	}
	require.Equal(t, map[string]int{"worker 1": 4, "worker 2": 4, "worker 3": 4}, done)
	for i, w := range workers {
		require.Equal(t, 4, w.out.jobs(), "jobs worker %d says it did", i+1)
	}

	// Each result came to its page once: nothing more arrives. A last job
	// of ann's, answered after bob's last, would come after any stray one.
	ann.ask("count", "one two three")
	n, answer, _ := ann.result()
	require.Equal(t, perAsker+1, n)
	require.Equal(t, "3 words", answer)
	bob.ask("count", "one")
	_, answer, _ = bob.result()
	require.Equal(t, "1 word", answer)
}

// TestNoWorker: with no worker, the page is told in plain words what to
// do; and once the last worker has gone, again.
func TestNoWorker(t *testing.T) {
	_, srv := startServer(t)
	page := srv.Dial()
	require.Equal(t, noWorker, page.CallError("job", wszero.Params{"kind": "count", "text": "a b", "n": 1}))
	require.Equal(t, `a job's kind is "shout", "count" or "reverse"`,
		page.CallError("job", wszero.Params{"kind": "sing", "text": "a b", "n": 2}))

	w := startTestWorker(t, srv.URL)
	waitForWorkers(t, page, "worker 1")
	require.Nil(t, page.Call("job", wszero.Params{"kind": "count", "text": "a b", "n": 3}))
	require.Equal(t, "2 words", page.Expect("result")["answer"])

	w.stop()
	waitForWorkers(t, page)
	require.Equal(t, noWorker, page.CallError("job", wszero.Params{"kind": "count", "text": "a b", "n": 4}))

	t.Run("only workers answer", func(t *testing.T) {
		require.Equal(t, `only workers send "done": send "work" first`,
			page.CallError("done", wszero.Params{"for": page.Conn().ID(), "n": 1, "answer": "forged"}))
	})
}

// TestAWorkerThatLeavesIsSkipped: the jobs go to the workers that are
// left, in turn.
func TestAWorkerThatLeavesIsSkipped(t *testing.T) {
	_, srv := startServer(t)
	page := &asker{Client: srv.Dial()}
	startTestWorker(t, srv.URL)
	second := startTestWorker(t, srv.URL)
	startTestWorker(t, srv.URL)
	waitForWorkers(t, page.Client, "worker 1", "worker 2", "worker 3")

	second.stop()
	waitForWorkers(t, page.Client, "worker 1", "worker 3")
	done := map[string]int{}
	for range 6 {
		page.ask("shout", "hi")
	}
	for range 6 {
		_, answer, worker := page.result()
		require.Equal(t, "HI", answer)
		done[worker]++
	}
	require.Equal(t, map[string]int{"worker 1": 3, "worker 3": 3}, done)
	require.Zero(t, second.out.jobs())
}

// TestAWorkerAwayIsSkipped: a worker whose network dropped is away (it may
// come back within the resume window): the connected workers take its
// turns until it is back.
func TestAWorkerAwayIsSkipped(t *testing.T) {
	s, srv := startServer(t)
	changes := make(chan wszero.PresenceChange, 100)
	s.OnPresence(func(c wszero.PresenceChange) { changes <- c })
	waitFor := func(kind wszero.PresenceKind) {
		t.Helper()
		timeout := time.After(wait)
		for {
			select {
			case c := <-changes:
				if c.Kind == kind && c.Group == "workers" {
					return
				}
			case <-timeout:
				t.Fatalf("no %v within %v", kind, wait)
			}
		}
	}

	page := &asker{Client: srv.Dial()}
	startTestWorker(t, srv.URL)
	proxy := cutproxy.Start(t, strings.TrimPrefix(srv.HTTP.URL, "http://"))
	away := startTestWorker(t, "ws://"+proxy.Addr()+"/ws")
	startTestWorker(t, srv.URL)
	waitForWorkers(t, page.Client, "worker 1", "worker 2", "worker 3")

	jobs := func(count int) map[string]int {
		t.Helper()
		for range count {
			page.ask("reverse", "abc")
		}
		done := map[string]int{}
		for range count {
			_, answer, worker := page.result()
			require.Equal(t, "cba", answer)
			done[worker]++
		}
		return done
	}

	proxy.Down()
	waitFor(wszero.WentAway)
	require.Equal(t, map[string]int{"worker 1": 2, "worker 3": 2}, jobs(4))

	proxy.Up()
	waitFor(wszero.CameBack)
	require.Equal(t, map[string]int{"worker 1": 1, "worker 2": 1, "worker 3": 1}, jobs(3))
	require.Equal(t, 1, away.out.jobs())
}

// TestWorkersOnTwoServers: with a broker, the workers of every server
// take turns, and each answer finds its page on the other server. (Two
// servers in this process, on brokertest's in-memory Hub.)
func TestWorkersOnTwoServers(t *testing.T) {
	hub := brokertest.NewHub()
	one, srvOne := startServer(t, wszero.WithBroker(hub.Broker()))
	_, srvTwo := startServer(t, wszero.WithBroker(hub.Broker()))
	page := &asker{Client: srvOne.Dial()}
	var workers []*worker
	for _, srv := range []*wszerotest.Server{srvOne, srvOne, srvTwo, srvTwo} {
		workers = append(workers, startTestWorker(t, srv.URL))
	}
	// Each server numbers its own workers: two of each name.
	require.Eventually(t, func() bool {
		n, err := one.CountMembers(context.Background(), "workers")
		return err == nil && n == 4
	}, wait, time.Millisecond, "server one knows the four workers")

	for i := range 8 {
		page.ask("count", strings.Repeat("word ", i+1))
	}
	done := map[string]int{}
	for range 8 {
		n, answer, worker := page.result()
		require.Equal(t, doJob("count", strings.Repeat("word ", n)), answer)
		done[worker]++
	}
	require.Equal(t, map[string]int{"worker 1": 4, "worker 2": 4}, done)
	for i, w := range workers {
		require.Equal(t, 2, w.out.jobs(), "jobs worker %d of 4 says it did", i+1)
	}
}

// TestThePage opens the page in headless Chromium: with no worker it says
// how to start one; with three, a person sees the results and which worker
// did each job, one worker after another.
func TestThePage(t *testing.T) {
	_, srv := startServer(t)
	browser := headless.Browser(t)
	tab := headless.OpenTab(t, browser, srv.HTTP.URL+"/")
	shown := func(css, text string) {
		t.Helper()
		tab.WaitFor(fmt.Sprintf(`((el) => el && el.innerText === %q && el.checkVisibility())(document.querySelector(%q))`, text, css))
	}
	click := func(button string) {
		t.Helper()
		tab.Do(chromedp.Click(chromedp.Search(fmt.Sprintf(`//button[text()=%q]`, button))))
	}

	shown("#workers", "No worker is connected yet.")
	click("Count the words")
	shown("#job-1", noWorker)
	require.Equal(t, "rgb(187, 0, 0)", headless.Eval[string](tab, `getComputedStyle(document.getElementById("job-1")).color`),
		"the error is shown in red")
	screenshot(tab, "workers-none.png")

	for range 3 {
		startTestWorker(t, srv.URL)
	}
	shown("#workers", "Workers: worker 1, worker 2, worker 3")

	tab.Do(
		chromedp.Evaluate[chromedp.Void](`document.getElementById("text").value = ""`),
		chromedp.SendKeys(chromedp.ID("text"), "one small step"),
	)
	click("SHOUT IT")
	click("Count the words")
	click("Write it backwards")
	// Which worker comes first depends on their IDs; then they take turns.
	var who []string
	for job, line := range map[string]string{
		"#job-2": `shout "one small step" → ONE SMALL STEP (done by `,
		"#job-3": `count the words of "one small step" → 3 words (done by `,
		"#job-4": `write backwards "one small step" → pets llams eno (done by `,
	} {
		tab.WaitFor(fmt.Sprintf(`((el) => el && el.checkVisibility() && /^%s(worker [123])\)$/.test(el.innerText))(document.querySelector(%q))`,
			regexp.QuoteMeta(line), job))
		who = append(who, headless.Eval[string](tab, fmt.Sprintf(`document.querySelector("%s .worker").innerText`, job)))
	}
	slices.Sort(who)
	require.Equal(t, []string{"worker 1", "worker 2", "worker 3"}, who, "each worker did one of the three jobs")
	require.Equal(t, "700", headless.Eval[string](tab, `getComputedStyle(document.querySelector("#job-4 .worker")).fontWeight`),
		"the worker's name is in bold")
	screenshot(tab, "workers.png")
}

// screenshot saves what the tab shows as name in the folder that
// $WSZERO_SCREENSHOTS names, when it is set, for a person to look at.
func screenshot(tab *headless.Tab, name string) {
	if dir := os.Getenv("WSZERO_SCREENSHOTS"); dir != "" {
		tab.Screenshot(filepath.Join(dir, name))
	}
}
