package wszerotest_test

import (
	"fmt"
	"testing"

	"github.com/wszero/wszero"
	"github.com/wszero/wszero/wszerotest"
)

func ExampleNewServer() {
	t := newExampleT() // in a test function, the test's *testing.T
	defer t.cleanup()

	s := wszero.New()
	s.On("add", func(c *wszero.Client, p struct{ A, B int }) int { return p.A + p.B })
	c := wszerotest.NewServer(t, s).Dial()

	fmt.Println(c.Call("add", wszero.Params{"a": 2, "b": 3}))
	fmt.Println(c.CallError("add", wszero.Params{"a": 2.5, "b": 3}))
	// Output:
	// 5
	// add: "a" should be a whole number, but got 2.5
}

func ExampleClient_Expect() {
	t := newExampleT() // in a test function, the test's *testing.T
	defer t.cleanup()

	s := wszero.New()
	s.On("say", func(c *wszero.Client, p struct{ Text string }) error {
		return s.Broadcast("said", wszero.Params{"text": p.Text, "from": c.Get("name")})
	})
	s.On("name", func(c *wszero.Client, p struct{ Name string }) { c.Set("name", p.Name) })
	srv := wszerotest.NewServer(t, s)
	ann, bob := srv.Dial(), srv.Dial()

	ann.Call("name", wszero.Params{"name": "Ann"})
	ann.Send("say", wszero.Params{"text": "hi, Bob"})
	fmt.Println(bob.Expect("said"))

	bob.Send("sya", wszero.Params{"text": "hi"})
	fmt.Println(bob.ExpectError())
	// Output:
	// map[from:Ann text:hi, Bob]
	// no handler for "sya" — did you mean "say"?
}

// exampleT stands in for the *testing.T that a test function gets, so that
// the examples run: it has the methods wszerotest uses.
type exampleT struct {
	testing.TB
	cleanups []func()
}

func newExampleT() *exampleT { return &exampleT{} }

func (t *exampleT) Helper()                        {}
func (t *exampleT) Log(args ...any)                {}
func (t *exampleT) Cleanup(f func())               { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Errorf(format string, a ...any) { fmt.Printf(format+"\n", a...) }
func (t *exampleT) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// cleanup runs the cleanups, last first, as a test does when it ends.
func (t *exampleT) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
