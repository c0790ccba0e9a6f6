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
	page.Type("#name", "Ada")
	page.Click("#hello")
	page.WaitText("#answer", "Hello, Ada!")
}
