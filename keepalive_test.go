package wszero

import (
	"testing"
	"time"
)

// TestTheFirstReadDeadlineIsAlwaysSet: a connection made at any moment
// gets its read deadline at once, also within the first sixteenth of the
// pong timeout after the process started (when the time since the clock's
// start is shorter than the step that moves deadlines), which once left a
// vanished peer "connected" for minutes after a restart.
func TestTheFirstReadDeadlineIsAlwaysSet(t *testing.T) {
	const timeout = 30 * time.Second
	for _, heard := range []monotime{1, monotime(time.Millisecond), monotime(time.Second), monotime(timeout/16 - 1), monotime(time.Hour)} {
		if !rearm(heard, 0, timeout) {
			t.Errorf("heard %v after the clock's start, never set: the deadline is not set", time.Duration(heard))
		}
	}
	set := monotime(time.Hour)
	if rearm(set+monotime(timeout/32), set, timeout) {
		t.Error("a deadline set a moment ago is set again")
	}
	if !rearm(set+monotime(timeout/16), set, timeout) {
		t.Error("a deadline a sixteenth of the timeout behind is not moved")
	}
}
