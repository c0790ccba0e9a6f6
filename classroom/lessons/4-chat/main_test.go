package main

import (
	"testing"

	"github.com/wszero/wszero/classroom/internal/lessontest"
)

func TestMain(m *testing.M) { lessontest.Main(m, main) }

// TestChat joins with two names and talks.
func TestChat(t *testing.T) {
	program := lessontest.Start(t)
	browser := lessontest.Browser(t)
	ann := lessontest.Open(t, browser, program.URL)
	bob := lessontest.Open(t, browser, program.URL)
	// Talking before joining: the page says what to do (it showed "null: …").
	ann.Type("#text", "too early")
	ann.Click("#say")
	ann.WaitContains(".problem", "join the chat first: type your name and press Join")
	ann.Click("#join")
	ann.WaitContains(".problem:last-of-type", "type your name in the box first")
	ann.Type("#name", "Ann")
	ann.Click("#join")
	bob.WaitContains("#messages", "Ann: has joined")
	bob.Type("#name", "<i>Bob</i>")
	bob.Click("#join")
	bob.Type("#text", "hi Ann")
	bob.Click("#say")
	ann.WaitContains("#messages", "<i>Bob</i>: hi Ann")
	if lessontest.Eval[bool](ann, `document.querySelector("#messages i") !== null`) {
		t.Error("a name made of HTML became HTML in the page")
	}
}
