package lessons_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/classroom/internal/lessontest"
	"github.com/wszero/wszero/wszerotest"
)

// The program these tests run is a lesson a child started in a folder with
// no static folder: this one.
func TestMain(m *testing.M) {
	lessontest.Main(m, func() {
		wszero.On("announce", func(c *wszero.Client, p struct{ Text string }) {})
		wszero.On("say", func(c *wszero.Client, p struct{ Text string }) {
			_ = c.Get("team").(string) // crashes: nothing was Set under "team"
		})
		wszero.RunServer(8000)
	})
}

// lessonServer is a lesson's server with the handlers children write first.
func lessonServer(t *testing.T) *wszerotest.Server {
	s := wszero.New()
	s.On("announce", func(c *wszero.Client, p struct{ Text string }) error {
		return s.Broadcast("announce", wszero.Params{"text": p.Text})
	})
	s.On("add", func(c *wszero.Client, p struct{ A, B int }) int { return p.A + p.B })
	return wszerotest.NewServer(t, s)
}

// Each mistake a child is likely to make gets a message that says what to
// do.
func TestAMisspeltOpSuggestsTheRightOne(t *testing.T) {
	c := lessonServer(t).Dial()
	require.Equal(t, `no handler for "anounce" — did you mean "announce"?`,
		c.CallError("anounce", wszero.Params{"text": "hi"}))
}

func TestAnOpWithNoHandlerListsTheOnesThereAre(t *testing.T) {
	c := lessonServer(t).Dial()
	require.Equal(t, `no handler for "hello": the server handles "add" and "announce"`,
		c.CallError("hello", nil))
}

func TestAMissingKeyShowsWhatToAdd(t *testing.T) {
	c := lessonServer(t).Dial()
	require.Equal(t, `announce needs "text": add it to the message, like {"op": "announce", "text": "…"}`,
		c.CallError("announce", nil))
}

func TestAMisspeltKeySuggestsTheRightOne(t *testing.T) {
	c := lessonServer(t).Dial()
	require.Equal(t, `announce got "txt" — did you mean "text"?`,
		c.CallError("announce", wszero.Params{"txt": "hi"}))
}

func TestAWrongTypeSaysWhatIsExpected(t *testing.T) {
	c := lessonServer(t).Dial()
	require.Equal(t, `add: "a" should be a whole number, but got 2.5`,
		c.CallError("add", wszero.Params{"a": 2.5, "b": 1}))
	msg := c.CallError("add", wszero.Params{"a": "2", "b": 1})
	require.Contains(t, msg, `"a" should be a whole number`)
	require.Contains(t, msg, `"2"`)
}

func TestAHandlerWithTheWrongShapeShowsTheRightShapes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler any
	}{
		{"no client", func(p struct{ Text string }) {}},
		{"a string instead of a struct", func(c *wszero.Client, text string) {}},
		{"not a function", "hello"},
		{"a result and an error the wrong way round", func(c *wszero.Client) (error, int) { return nil, 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := panicOf(func() { wszero.New().On("announce", tc.handler) })
			require.Contains(t, msg, `wszero.On("announce", …)`)
			require.Contains(t, msg, "func(c *wszero.Client", "the message shows the shapes a handler may have:\n%s", msg)
			require.Contains(t, msg, "A handler must be a function of one of these shapes")
		})
	}
	t.Run("the same op twice", func(t *testing.T) {
		s := wszero.New()
		s.On("announce", func(c *wszero.Client) {})
		msg := panicOf(func() { s.On("announce", func(c *wszero.Client) {}) })
		require.Contains(t, msg, `"announce" already has a handler`)
	})
}

func panicOf(f func()) (msg string) {
	defer func() { msg = fmt.Sprint(recover()) }()
	f()
	return "did not panic"
}

func TestAPortInUseSaysHowToFreeIt(t *testing.T) {
	l, err := net.Listen("tcp", ":0")
	require.NoError(t, err)
	defer l.Close()
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	p := lessontest.Launch(t, "", port)
	require.Equal(t, 1, p.WaitExit(t))
	out := p.Output()
	require.Contains(t, out, "port "+port+" is already in use")
	require.Contains(t, out, "Stop that program with Ctrl-C in its window, or choose another port")
}

func TestForgettingTheStaticFolderShowsHowToMakeIt(t *testing.T) {
	p := lessontest.Start(t)
	require.Contains(t, p.Output(), `There is no "static" folder here yet, so the page shows how to make one.`)
	resp, err := http.Get(p.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Contains(t, string(body), "make a folder called <code>static</code> next to your\n<code>main.go</code>")
	require.Contains(t, string(body), "index.html")
}

// TestAPageOpenedAsAFileSaysWhatToOpen: a child who double-clicks a
// lesson's index.html sees, in the page, what to open instead.
func TestAPageOpenedAsAFileSaysWhatToOpen(t *testing.T) {
	pages, err := filepath.Glob("*/static/index.html")
	require.NoError(t, err)
	require.Len(t, pages, 6)
	browser := lessontest.Browser(t)
	for _, page := range pages {
		t.Run(filepath.Dir(filepath.Dir(page)), func(t *testing.T) {
			p := lessontest.OpenFile(t, browser, page)
			p.WaitShown("#open-the-address", true)
			p.WaitContains("#open-the-address", "Open the address the terminal printed (like http://localhost:8000), not the file.")
		})
	}
}

// TestACrashSaysWhatHappenedInWords: a handler that crashes on a c.Get
// that was never Set tells the page where and what it means, and the
// terminal gets one short line, not a stack.
func TestACrashSaysWhatHappenedInWords(t *testing.T) {
	src, err := os.ReadFile("friendly_test.go")
	require.NoError(t, err)
	line := 1 + strings.Count(string(src[:strings.Index(string(src), "// crashes: nothing was Set")]), "\n")
	site := fmt.Sprintf("friendly_test.go:%d", line)

	p := lessontest.Start(t)
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p.URL, "http")+"ws", nil)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.WriteMessage(websocket.TextMessage, []byte(`{"op": "say", "text": "hi", "_ref": 1}`)))
	var answer struct{ Op, Msg string }
	require.NoError(t, conn.ReadJSON(&answer))
	require.Equal(t, "error", answer.Op)
	require.Equal(t, "say crashed on the server at "+site+": interface conversion: interface {} is nil, not string. "+
		`Something was empty: c.Get gives nothing (nil) for a key that c.Set has not stored yet, for example when "say" runs before the message that sets it. `+
		`Check it first: v, ok := c.Get("…").(string)`, answer.Msg)

	logged := p.WaitLine(t, regexp.MustCompile(`wszero: say crashed`))
	require.Contains(t, logged, "wszero: say crashed at "+site+": interface conversion: interface {} is nil, not string")
	require.Contains(t, logged, "WSZERO_STACK=1")
	require.Less(t, len(logged), 300, "one short line: %s", logged)
	require.NotContains(t, p.Output(), "goroutine ", "no stack unless asked for")
}

// TestAHandlerOfTheWrongShapeInMainSaysOnlyWhy: a lesson whose main
// registers a handler of the wrong shape prints what is wrong and the
// shapes there are, without a goroutine trace, and stops with status 2.
func TestAHandlerOfTheWrongShapeInMainSaysOnlyWhy(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "wrong-shape")
	build := exec.Command("go", "build", "-o", bin, "./testdata/wrong-shape")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	run := exec.Command(bin)
	out, err = run.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 2, exit.ExitCode())
	text := string(out)
	require.True(t, strings.HasPrefix(text, `wszero.On("hello", …) at `), text)
	require.Contains(t, text, "wrong-shape/main.go:7: the handler func(struct { Name string }) string must take a *wszero.Client first.")
	require.Contains(t, text, "A handler must be a function of one of these shapes")
	require.NotContains(t, text, "goroutine")
	require.NotContains(t, text, "panic")
}
