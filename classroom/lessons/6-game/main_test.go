package main

import (
	"strconv"
	"testing"

	"github.com/wszero/wszero/classroom/internal/lessontest"
)

func TestMain(m *testing.M) { lessontest.Main(m, main) }

// TestGame joins two players: the clock ticks by itself, and taps score for
// everyone to see.
func TestGame(t *testing.T) {
	program := lessontest.Start(t)
	browser := lessontest.Browser(t)
	ann := lessontest.Open(t, browser, program.URL)
	bob := lessontest.Open(t, browser, program.URL)
	ann.WaitContains("#clock", "seconds left")
	first := lessontest.Eval[string](ann, `document.getElementById("clock").textContent`)
	ann.WaitFor(`document.getElementById("clock").textContent !== ` + strconv.Quote(first))
	// Tapping before playing: the page says what to do (the handler crashed).
	ann.Click("#tap")
	ann.WaitContains(".problem", "type your name and press Play first")
	ann.Type("#name", "Ann")
	ann.Click("#join")
	bob.Type("#name", "Bob")
	bob.Click("#join")
	for range 3 {
		ann.Click("#tap")
	}
	bob.Click("#tap")
	bob.WaitText("#scores li:first-child", "Ann: 3")
	ann.WaitText("#scores li:last-child", "Bob: 1")

	// A new name replaces the old one, and a player who leaves leaves the
	// list: the scores keep only who is playing.
	bob.Type("#name", "Bobby")
	bob.Click("#join")
	bob.Click("#tap")
	ann.WaitFor(`[...document.querySelectorAll("#scores li")].map((li) => li.textContent).join() === "Ann: 3,Bobby: 1"`)
	bob.Close()
	ann.Click("#tap")
	ann.WaitFor(`[...document.querySelectorAll("#scores li")].map((li) => li.textContent).join() === "Ann: 4"`)
}
