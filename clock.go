package wszero

import (
	"time"
)

// monotime is a moment on the monotonic clock, as the time since
// clockStart: eight bytes where a time.Time takes twenty-four, for what
// every connection keeps.
type monotime time.Duration

var clockStart = time.Now()

// monoNow returns the monotime now.
func monoNow() monotime { return monotime(time.Since(clockStart)) }

// add returns the time d after m.
func (m monotime) add(d time.Duration) time.Time { return clockStart.Add(time.Duration(m) + d) }
