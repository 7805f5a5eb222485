package main

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"rtscore/benchmarks/goloadgen/rawcodec"
)

// timerSlack is send lateness forgiven as the client's own timer granularity: a call that leaves up to
// this late is timed from when it left; a later one is timed from its intended time plus this slack, so
// the queue a client builds when it cannot keep up is charged, never hidden (no coordinated omission).
const timerSlack = 500 * time.Microsecond

// chunkSize calls' records are allocated at a time; a chunk never moves, so a call writes its record
// through a pointer while the scheduler goes on allocating.
const chunkSize = 8192

// record is one measured call: when it was meant to leave (since the measurement start), how late it
// left, how long it took, and its gRPC status code.
type record struct {
	sentAt  time.Duration
	lag     time.Duration
	latency time.Duration
	code    uint32
}

// records is an append-only arena of call records owned by one goroutine.
type records struct {
	chunks [][]record
	n      int
}

func (r *records) next() *record {
	if r.n%chunkSize == 0 {
		r.chunks = append(r.chunks, make([]record, chunkSize))
	}
	slot := &r.chunks[len(r.chunks)-1][r.n%chunkSize]
	r.n++
	return slot
}

func (r *records) each(visit func(*record)) {
	for i := 0; i < r.n; i++ {
		visit(&r.chunks[i/chunkSize][i%chunkSize])
	}
}

// outcome is what a run did, before it is summarised.
type outcome struct {
	calls      []*records
	sent       int
	window     time.Duration
	lags       []time.Duration
	late       int
	allCalls   int64
	cpuSeconds [2]float64 // user, system
}

// forceRaw makes a call send pre-serialized bytes; unread is the reply the codec never fills.
var (
	forceRaw = grpc.ForceCodecV2(rawcodec.Codec{})
	unread   []byte
)

// lane is one connection and what the balancer reads of it: its calls in flight and an average of
// its recent latencies (float64 bits; 0 until its first reply), with when that was last updated.
type lane struct {
	conn     *grpc.ClientConn
	inFlight atomic.Int64
	rtt      atomic.Uint64
	stamp    atomic.Int64 // nanoseconds since the runner's t0
}

// Balancing over connections: the kernel hands each connection to one worker of a SO_REUSEPORT server
// by a hash, so calls spread over them in turn would load workers by how many connections each drew
// (six or more of eight on one worker in 29% of runs). A call instead leaves on the connection in turn
// unless another drawn at random costs less by more than balanceTolerance, a connection's cost being
// its average latency times its calls in flight plus one, the way the pool client weighs scorers. The average
// decays toward zero over rttDecay of idleness, so a connection passed over after a slow spell is
// tried again.
const (
	balanceTolerance = 1.5
	rttWeight        = 0.1
	rttDecay         = 500 * time.Millisecond
)

// runner holds one run's connections, requests and counters.
type runner struct {
	cfg      config
	lanes    []lane
	requests [][]byte
	ok       atomic.Int64
	failed   atomic.Int64
	t0       time.Time
	measure  time.Time
	end      time.Time
}

func newRunner(cfg config, conns []*grpc.ClientConn, requests [][]byte) *runner {
	r := &runner{cfg: cfg, lanes: make([]lane, len(conns)), requests: requests}
	for i, conn := range conns {
		r.lanes[i].conn = conn
	}
	r.t0 = time.Now()
	r.measure = r.t0.Add(cfg.warmup)
	if cfg.duration > 0 {
		r.end = r.measure.Add(cfg.duration)
	}
	return r
}

// call sends request `index` and returns its status code and latency measured from `start`.
func (r *runner) call(index int, start time.Time) (uint32, time.Duration) {
	request := &r.requests[index%len(r.requests)]
	l := r.pick(index)
	l.inFlight.Add(1)
	sent := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.timeout)
	err := l.conn.Invoke(ctx, r.cfg.method, request, &unread, forceRaw)
	done := time.Now()
	latency := done.Sub(start)
	cancel()
	l.inFlight.Add(-1)
	r.observe(l, done, done.Sub(sent), err != nil)
	if err == nil {
		r.ok.Add(1)
		return 0, latency
	}
	r.failed.Add(1)
	return uint32(status.Code(err)), latency
}

// pick is the connection call `index` leaves on: the one in turn, unless one other drawn at random is
// clearly cheaper (two choices, not the cheapest of all: calls sent on the same stale costs would all
// pile onto the one connection that looked cheapest).
func (r *runner) pick(index int) *lane {
	n := len(r.lanes)
	turn := &r.lanes[index%n]
	if n == 1 {
		return turn
	}
	other := &r.lanes[(index+1+rand.IntN(n-1))%n]
	now := int64(time.Since(r.t0))
	if r.cost(turn, now) > balanceTolerance*r.cost(other, now) {
		return other
	}
	return turn
}

func (r *runner) cost(l *lane, now int64) float64 {
	rtt := math.Float64frombits(l.rtt.Load())
	idle := time.Duration(now - l.stamp.Load())
	if idle > 0 {
		rtt *= math.Exp(-float64(idle) / float64(rttDecay))
	}
	return rtt * float64(l.inFlight.Load()+1)
}

// observe folds one reply's latency into its connection's average (a lost update under a race only
// drops one sample). A failed call counts as twice the average: a refusal comes back fast, and must
// not draw more calls to the worker that refused it.
func (r *runner) observe(l *lane, at time.Time, latency time.Duration, failed bool) {
	old := math.Float64frombits(l.rtt.Load())
	value := float64(latency)
	if failed {
		value = 2 * max(old, value)
	}
	if old > 0 {
		value = old + rttWeight*(value-old)
	}
	l.rtt.Store(math.Float64bits(value))
	l.stamp.Store(int64(at.Sub(r.t0)))
}

func (r *runner) pastEnd(t time.Time) bool {
	return !r.end.IsZero() && !t.Before(r.end)
}

// openLoop sends on a fixed schedule (Poisson or constant gaps) whatever the server does.
func (r *runner) openLoop() outcome {
	cfg := r.cfg
	callProcs()
	pace := newPacer()
	defer pace.close()
	rng := rand.New(rand.NewPCG(cfg.seed, 0x5eed))
	gap := float64(time.Second) / cfg.rate
	inFlight := make(chan struct{}, cfg.maxInFlight)
	calls := make(chan openCall)
	var done sync.WaitGroup
	measured := &records{}
	sent, index := 0, 0
	offset := 0.0
	lastSend := r.measure
	for {
		if cfg.arrivals == "poisson" {
			offset += rng.ExpFloat64() * gap
		} else {
			offset += gap
		}
		intended := r.t0.Add(time.Duration(offset))
		isMeasured := !intended.Before(r.measure)
		if r.pastEnd(intended) || (cfg.count > 0 && sent >= cfg.count) {
			break
		}
		pace.sleepUntil(intended)
		inFlight <- struct{}{}
		var slot *record
		if isMeasured {
			slot = measured.next()
			slot.sentAt = intended.Sub(r.measure)
			sent++
			lastSend = time.Now()
		}
		done.Add(1)
		work := openCall{index: index, intended: intended, slot: slot}
		// A caller waiting for work takes the call; else a new one starts with it. Callers live for the
		// run, so each grows its stack for gRPC's deep call path once, not once per call.
		select {
		case calls <- work:
		default:
			go r.caller(work, calls, inFlight, &done)
		}
		index++
	}
	close(calls)
	done.Wait()
	window := max(cfg.nominalWindow(), lastSend.Sub(r.measure))
	lags := make([]time.Duration, 0, measured.n)
	late := 0
	measured.each(func(c *record) {
		lags = append(lags, c.lag)
		if c.lag > timerSlack {
			late++
		}
	})
	return outcome{calls: []*records{measured}, sent: sent, window: window, lags: lags, late: late, allCalls: int64(index)}
}

// openCall is one call of the open loop: which request, when it was meant to leave, and where its
// record goes (nil for a warm-up call).
type openCall struct {
	index    int
	intended time.Time
	slot     *record
}

// caller makes `first`, then every call it receives until `calls` is closed.
func (r *runner) caller(first openCall, calls <-chan openCall, inFlight <-chan struct{}, done *sync.WaitGroup) {
	for work, ok := first, true; ok; work, ok = <-calls {
		// Lateness is taken here, where the call leaves, so it includes the hand-over to this caller.
		lag := max(time.Since(work.intended), 0)
		code, latency := r.call(work.index, work.intended.Add(min(lag, timerSlack)))
		if work.slot != nil {
			work.slot.code, work.slot.latency, work.slot.lag = code, latency, lag
		}
		<-inFlight
		done.Done()
	}
}

// closedLoop runs `concurrency` callers, each sending its next request when the previous one returns.
func (r *runner) closedLoop() outcome {
	cfg := r.cfg
	budget := atomic.Int64{}
	budget.Store(int64(cfg.count))
	perCaller := make([]*records, cfg.concurrency)
	finished := make([]time.Time, cfg.concurrency)
	var all atomic.Int64
	var done sync.WaitGroup
	for c := range cfg.concurrency {
		perCaller[c] = &records{}
		finished[c] = r.measure
		done.Add(1)
		go func(c int) {
			defer done.Done()
			for index := c; ; index += cfg.concurrency {
				start := time.Now()
				if r.pastEnd(start) {
					return
				}
				isMeasured := !start.Before(r.measure)
				if isMeasured && cfg.count > 0 && budget.Add(-1) < 0 {
					return
				}
				code, latency := r.call(index, start)
				all.Add(1)
				if isMeasured {
					slot := perCaller[c].next()
					slot.sentAt, slot.latency, slot.code = start.Sub(r.measure), latency, code
					finished[c] = time.Now()
				}
			}
		}(c)
	}
	done.Wait()
	last, sent := r.measure, 0
	for c := range cfg.concurrency {
		if finished[c].After(last) {
			last = finished[c]
		}
		sent += perCaller[c].n
	}
	window := last.Sub(r.measure)
	if cfg.duration > 0 {
		window = max(window, cfg.duration)
	}
	return outcome{calls: perCaller, sent: sent, window: window, allCalls: all.Load()}
}

// nominalWindow is how long the measured part should take at the offered rate.
func (c config) nominalWindow() time.Duration {
	if c.duration > 0 {
		return c.duration
	}
	if c.mode == "open" {
		return time.Duration(float64(c.count) / c.rate * float64(time.Second))
	}
	return 0
}
