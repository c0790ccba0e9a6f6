package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/internal/headless"
)

// wait bounds every wait in the test.
const wait = 5 * time.Second

// chatServer serves the chat's handlers and its static folder on addr
// (127.0.0.1:0 for any port), until stop.
type chatServer struct {
	addr string
	srv  *http.Server
	s    *wszero.Server
	done chan error
}

func startChat(t *testing.T, addr string) *chatServer {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := wszero.New(wszero.WithStatic("static"), wszero.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	addHandlers(s)
	c := &chatServer{addr: l.Addr().String(), srv: &http.Server{Handler: s}, s: s, done: make(chan error, 1)}
	go func() { c.done <- c.srv.Serve(l) }()
	return c
}

// stop closes the listener and says goodbye to every page.
func (c *chatServer) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	// Close rather than Shutdown: net/http's Shutdown would wait up to 5 s
	// for connections the browser opened ahead of need. The pages'
	// WebSockets are wszero's to close.
	err := errors.Join(c.srv.Close(), c.s.Shutdown(ctx))
	if e := <-c.done; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	if err != nil {
		t.Errorf("stopping the chat server: %v", err)
	}
}

// tab is one browser tab with the chat open.
type tab struct{ *headless.Tab }

func openTab(t *testing.T, browser context.Context, url string) *tab {
	t.Helper()
	b := &tab{headless.OpenTab(t, browser, url)}
	b.WaitFor(`document.getElementById("state").textContent === "open"`)
	return b
}

// in returns the tab for use by t, a subtest: its failures are t's.
func (b *tab) in(t *testing.T) *tab { return &tab{b.In(t)} }

// waitForLine waits until the chat's log shows a line, as text.
func (b *tab) waitForLine(line string) {
	b.T.Helper()
	b.WaitFor(fmt.Sprintf(`[...document.querySelectorAll("#log li")].some((li) => li.textContent === %q)`, line))
}

// screenshot saves what the tab shows as name in the folder that
// $WSZERO_SCREENSHOTS names, when it is set, for a person to look at.
func (b *tab) screenshot(name string) {
	if dir := os.Getenv("WSZERO_SCREENSHOTS"); dir != "" {
		b.Screenshot(filepath.Join(dir, name))
	}
}

// submit types text into a form's input and submits the form.
func (b *tab) submit(input, text string) {
	b.T.Helper()
	b.Do(
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%q).value = ""`, input)),
		chromedp.SendKeys(chromedp.ID(input), text),
		chromedp.Click(chromedp.CSS(`#`+input+` + button`)),
	)
}

// TestChatInTwoWindows runs the chat in two tabs of a real browser: both
// join, one talks and the other sees it; a name made of HTML is shown as
// text; the pages join again by themselves after the server restarts; and
// a tab that closes is announced as gone.
func TestChatInTwoWindows(t *testing.T) {
	server := startChat(t, "127.0.0.1:0")
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			server.stop(t)
		}
	})
	browser := headless.Browser(t)
	url := "http://" + server.addr + "/"

	ada := openTab(t, browser, url)
	t.Run("before joining, only the join box shows", func(t *testing.T) {
		ada := ada.in(t)
		ada.screenshot("chat-before-joining.png")
		ada.WaitShown("#join-form", true)
		ada.WaitShown("#say-form", false)
	})
	ada.submit("name", "Ada")
	ada.waitForLine("Ada joined")
	t.Run("after joining, only the say box shows", func(t *testing.T) {
		ada := ada.in(t)
		ada.WaitShown("#say-form", true)
		ada.screenshot("chat-after-joining.png")
		ada.WaitShown("#join-form", false)
	})

	bold := openTab(t, browser, url)
	t.Run("a name that is too long is refused, in words", func(t *testing.T) {
		bold := bold.in(t)
		bold.submit("name", strings.Repeat("x", 31))
		bold.WaitFor(`document.querySelector("#log li.error")?.textContent === "choose a name of 1 to 30 letters"`)
	})
	bold.submit("name", "<b>x</b>")
	ada.waitForLine("<b>x</b> joined")
	bold.waitForLine("<b>x</b> joined")

	t.Run("one says something and the other sees it", func(t *testing.T) {
		ada, bold := ada.in(t), bold.in(t)
		ada.submit("text", "hello, <i>everyone</i>")
		bold.waitForLine("Ada: hello, <i>everyone</i>")
		ada.waitForLine("Ada: hello, <i>everyone</i>")
	})

	t.Run("HTML in names and words is shown as text", func(t *testing.T) {
		for _, b := range []*tab{ada.in(t), bold.in(t)} {
			html := headless.Eval[string](b.Tab, `document.getElementById("log").innerHTML`)
			if !strings.Contains(html, "&lt;b&gt;x&lt;/b&gt; joined") || !strings.Contains(html, "&lt;i&gt;everyone&lt;/i&gt;") {
				t.Errorf("the log's HTML does not escape the name and words:\n%s", html)
			}
			if headless.Eval[bool](b.Tab, `document.querySelector("#log b, #log i") !== null`) {
				t.Errorf("the log has a <b> or <i> element made from a chat message")
			}
		}
	})

	t.Run("after the server restarts, the pages join again by themselves", func(t *testing.T) {
		ada, bold := ada.in(t), bold.in(t)
		server.stop(t)
		stopped = true
		ada.WaitFor(`document.getElementById("state").textContent !== "open"`)
		server = startChat(t, server.addr) // the same port: the pages come back
		stopped = false
		ada.WaitFor(`document.getElementById("state").textContent === "open"`)
		bold.WaitFor(`document.getElementById("state").textContent === "open"`)
		ada.submit("text", "still here")
		bold.waitForLine("Ada: still here")
		if n := headless.Eval[int](ada.Tab, `document.querySelectorAll("#log li.error").length`); n != 0 {
			t.Errorf("Ada's page shows %d errors after the restart", n)
		}
	})

	t.Run("a tab that closes is announced as gone", func(t *testing.T) {
		ada, bold := ada.in(t), bold.in(t)
		bold.Close()
		ada.waitForLine("<b>x</b> left")
	})
}
