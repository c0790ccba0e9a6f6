package main

import (
	"testing"

	"github.com/wszero/wszero/classroom/internal/lessontest"
)

func TestMain(m *testing.M) { lessontest.Main(m, main) }

// TestHello types a name and sees the server's answer.
func TestHello(t *testing.T) {
	program := lessontest.Start(t)
	page := lessontest.Open(t, lessontest.Browser(t), program.URL)
	page.Click("#hello")
	page.WaitText("#answer", "Type your name in the box first!") // not "Hello, !"
	page.Type("#name", "Ada")
	page.Click("#hello")
	page.WaitText("#answer", "Hello, Ada!")

	t.Run("a misspelt op in the page gets a message that names the right one", func(t *testing.T) {
		msg := lessontest.Eval[string](page.In(t), `call("helo", {name: "Ada"}).then(() => "no error", (err) => err.message)`)
		if want := `no handler for "helo" — did you mean "hello"?`; msg != want {
			t.Errorf("the page got %q, want %q", msg, want)
		}
	})
}
