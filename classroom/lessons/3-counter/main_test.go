package main

import (
	"testing"

	"github.com/wszero/wszero/classroom/internal/lessontest"
)

func TestMain(m *testing.M) { lessontest.Main(m, main) }

// TestCounter clicks in one page and sees the number change in both.
func TestCounter(t *testing.T) {
	program := lessontest.Start(t)
	browser := lessontest.Browser(t)
	ann := lessontest.Open(t, browser, program.URL)
	bob := lessontest.Open(t, browser, program.URL)
	ann.Click("#click")
	ann.WaitText("#count", "1")
	bob.WaitText("#count", "1")
	bob.Click("#click")
	ann.WaitText("#count", "2")
	bob.WaitText("#count", "2")
	late := lessontest.Open(t, browser, program.URL)
	late.WaitText("#count", "2")
}
