package loadgen

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Text is the text every message carries: with its keys, a message is
// about 100 bytes.
const Text = "the quick brown fox jumps over the lazy dog 0123456"

// Result is what one run of a scenario measured and checked.
type Result struct {
	Deliveries int64   // messages received (fan-out) or round trips (echo) in the measured time
	Seconds    float64 // the measured time
	P50, P90   float64 // latency percentiles, in milliseconds (fixed rate only)
	P99, Max   float64
	Lost       int64   // messages that never came
	Disordered int64   // messages that came after a later one
	Corrupt    int64   // messages whose bytes were not those sent
	Errors     int     // connections the server closed, protocol errors
	GenBusy    float64 // the generator's CPU time over the measured time: near 1, it may be the bottleneck
}

// Check returns an error when a message was lost, disordered or corrupt.
func (r Result) Check() error {
	if r.Lost+r.Disordered+r.Corrupt != 0 || r.Errors != 0 {
		return fmt.Errorf("lost %d, out of order %d, corrupt %d, connection errors %d", r.Lost, r.Disordered, r.Corrupt, r.Errors)
	}
	return nil
}

// parseMsg checks payload is exactly {"op":op,"seq":N[,"ts":T],"text":Text}
// and returns N and T.
func parseMsg(payload []byte, prefix string, withTs bool) (seq, ts int64, ok bool) {
	if !bytes.HasPrefix(payload, []byte(prefix)) {
		return 0, 0, false
	}
	rest := payload[len(prefix):]
	seq, rest, ok = number(rest)
	if !ok {
		return 0, 0, false
	}
	if withTs {
		if !bytes.HasPrefix(rest, []byte(`,"ts":`)) {
			return 0, 0, false
		}
		ts, rest, ok = number(rest[6:])
		if !ok {
			return 0, 0, false
		}
	}
	return seq, ts, string(rest) == `,"text":"`+Text+`"}`
}

// number parses the digits at the start of b.
func number(b []byte) (int64, []byte, bool) {
	i := 0
	var n int64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + int64(b[i]-'0')
		i++
	}
	return n, b[i:], i > 0
}

// isPing reports a message that is not part of the application (wszero's
// keepalive _ping), which the checks skip.
func isPing(payload []byte) bool { return bytes.HasPrefix(payload, []byte(`{"op":"_ping"`)) }

func pub(seq, ts int64) []byte {
	return []byte(`{"op":"pub","seq":` + strconv.FormatInt(seq, 10) + `,"ts":` + strconv.FormatInt(ts, 10) + `,"text":"` + Text + `"}`)
}

// fanout tracks, for every receiver, the next broadcast it must get.
type fanout struct {
	l       *Loop
	conns   []*Conn
	next    []int64 // by Conn.ID
	got     []int32 // receivers that have each seq, in a ring
	res     Result
	done    atomic.Int64 // broadcasts every receiver has
	count   atomic.Int64 // deliveries
	lat     []int64      // latencies in ns, fixed rate only
	start   time.Time
	onWhole func(seq int64) // called on the loop when every receiver has seq
}

const ring = 1 << 16

func newFanout(l *Loop, conns []*Conn) *fanout {
	f := &fanout{l: l, conns: conns, next: make([]int64, len(conns)), got: make([]int32, ring), start: time.Now()}
	l.OnMessage = f.onMessage
	return f
}

func (f *fanout) onMessage(c *Conn, payload []byte) {
	seq, ts, ok := parseMsg(payload, `{"op":"msg","seq":`, true)
	if !ok {
		if !isPing(payload) {
			f.res.Corrupt++
		}
		return
	}
	if f.lat != nil {
		f.lat = append(f.lat, int64(time.Since(f.start))-ts)
	}
	want := f.next[c.ID]
	switch {
	case seq < want:
		f.res.Disordered++
		return
	case seq > want:
		f.res.Lost += seq - want
	}
	f.next[c.ID] = seq + 1
	f.count.Add(1)
	slot := &f.got[seq%ring]
	*slot++
	if int(*slot) == len(f.conns) {
		*slot = 0
		f.done.Add(1)
		if f.onWhole != nil {
			f.onWhole(seq)
		}
	}
}

// start runs the loop, now that what it calls is set; the returned channel
// is closed when it has stopped.
func start(l *Loop) chan struct{} {
	run := make(chan struct{})
	go func() {
		l.Run()
		close(run)
	}()
	return run
}

// finish waits up to a second for sent broadcasts to arrive, stops the
// loop and counts what never came.
func (f *fanout) finish(sent int64, run chan struct{}) Result {
	deadline := time.Now().Add(2 * time.Second)
	for f.done.Load() < sent && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	f.l.Stop()
	<-run
	for _, n := range f.next {
		if n < sent {
			f.res.Lost += sent - n
		}
	}
	f.res.Errors = f.l.Errors
	return f.res
}

// FanoutClosed has conns[0] publish broadcasts to every connection, with
// window broadcasts in flight: a new one whenever every receiver has had
// an earlier one.
func FanoutClosed(l *Loop, conns []*Conn, d time.Duration, window int) Result {
	f := newFanout(l, conns)
	var sent atomic.Int64
	var stop atomic.Bool
	send := func() {
		s := sent.Add(1) - 1
		_ = conns[0].Send(pub(s, int64(time.Since(f.start))))
	}
	f.onWhole = func(int64) {
		if !stop.Load() {
			send()
		}
	}
	run := start(l)
	for range window {
		send()
	}
	time.Sleep(d)
	stop.Store(true)
	n := f.count.Load()
	res := f.finish(sent.Load(), run)
	res.Deliveries, res.Seconds = n, d.Seconds()
	return res
}

// FanoutRate publishes broadcasts at a fixed rate of deliveries a second
// and measures each delivery's latency from when it was due to be sent.
func FanoutRate(l *Loop, conns []*Conn, d time.Duration, deliveriesPerSecond int) Result {
	f := newFanout(l, conns)
	every := time.Duration(float64(time.Second) * float64(len(conns)) / float64(deliveriesPerSecond))
	total := int64(d / every)
	f.lat = make([]int64, 0, total*int64(len(conns))+1024)
	run := start(l)
	due := time.Since(f.start)
	for s := int64(0); s < total; s++ {
		if wait := due - time.Since(f.start); wait > 0 {
			time.Sleep(wait)
		}
		_ = conns[0].Send(pub(s, int64(due)))
		due += every
	}
	res := f.finish(total, run)
	res.Deliveries, res.Seconds = int64(len(f.lat)), d.Seconds()
	slices.Sort(f.lat)
	pct := func(p float64) float64 {
		if len(f.lat) == 0 {
			return 0
		}
		return float64(f.lat[min(len(f.lat)-1, int(p*float64(len(f.lat))))]) / 1e6
	}
	res.P50, res.P90, res.P99, res.Max = pct(0.50), pct(0.90), pct(0.99), pct(1)
	return res
}

// Echo has every connection send an echo and wait for its answer, over
// and over, and counts round trips.
func Echo(l *Loop, conns []*Conn, d time.Duration) Result {
	var res Result
	next := make([]int64, len(conns))
	var count atomic.Int64
	var stop atomic.Bool
	var mu sync.Mutex // guards res between the loop and the end
	echo := func(seq int64) []byte {
		return []byte(`{"op":"echo","seq":` + strconv.FormatInt(seq, 10) + `,"text":"` + Text + `"}`)
	}
	l.OnMessage = func(c *Conn, payload []byte) {
		seq, _, ok := parseMsg(payload, `{"op":"echo","seq":`, false)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case !ok:
			if !isPing(payload) {
				res.Corrupt++
			}
			return
		case seq != next[c.ID]:
			res.Disordered++
			return
		}
		next[c.ID]++
		count.Add(1)
		if !stop.Load() {
			_ = c.Send(echo(seq + 1))
		}
	}
	run := start(l)
	for _, c := range conns {
		_ = c.Send(echo(0))
	}
	time.Sleep(d)
	stop.Store(true)
	n := count.Load()
	time.Sleep(100 * time.Millisecond) // the last answers
	l.Stop()
	<-run
	mu.Lock()
	defer mu.Unlock()
	res.Deliveries, res.Seconds, res.Errors = n, d.Seconds(), l.Errors
	return res
}
