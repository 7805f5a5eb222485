// rtscore-loadgen: the native load generator of `rtscore bench`.
//
// It sends requests that were serialized once before the run (a file of length-delimited messages) to
// any unary gRPC method, open loop (Poisson or constant arrivals, latency from each call's intended send
// time) or closed loop, and writes one JSON document: the latency histogram, status codes, send lateness
// and its own CPU time per call.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"time"
)

// Exit codes the Python side maps to its errors.
const (
	exitBadArgs     = 2
	exitUnavailable = 3
)

// config is one run's settings, from the command line.
type config struct {
	target      string
	method      string
	requests    string
	out         string
	timeline    string
	mode        string
	rate        float64
	arrivals    string
	duration    time.Duration
	count       int
	warmup      time.Duration
	concurrency int
	channels    int
	timeout     time.Duration
	seed        uint64
	maxInFlight int
	startAt     float64
	progress    bool
	cpuProfile  string
	tls         tlsFiles
}

func parseFlags(args []string) (config, error) {
	var c config
	var duration, warmup, timeout float64
	flags := flag.NewFlagSet("rtscore-loadgen", flag.ContinueOnError)
	flags.StringVar(&c.target, "target", "", "HOST:PORT of the gRPC server")
	flags.StringVar(&c.method, "method", "/rtscore.v1.Scorer/Score", "full method name")
	flags.StringVar(&c.requests, "requests", "", "file of length-delimited serialized requests (uvarint size, bytes)")
	flags.StringVar(&c.out, "out", "-", "write the JSON result here (- for stdout)")
	flags.StringVar(&c.timeline, "timeline", "", "also write each measured call as four little-endian float64s: sent at (s), latency (s), status code, the part of the latency spent waiting to leave (s)")
	flags.StringVar(&c.mode, "mode", "open", "open or closed")
	flags.Float64Var(&c.rate, "rate", 100, "open loop: calls per second")
	flags.StringVar(&c.arrivals, "arrivals", "poisson", "open loop: poisson or constant")
	flags.Float64Var(&duration, "duration", 0, "measured seconds (or give --count)")
	flags.IntVar(&c.count, "count", 0, "measured calls instead of a duration")
	flags.Float64Var(&warmup, "warmup", 1, "seconds sent but not measured")
	flags.IntVar(&c.concurrency, "concurrency", 1, "closed loop: callers")
	flags.IntVar(&c.channels, "channels", 1, "connections; a call leaves on the one in turn unless another is clearly less loaded")
	flags.Float64Var(&timeout, "timeout", 10, "deadline of every call, seconds")
	flags.Uint64Var(&c.seed, "seed", 0, "seed of the Poisson arrivals")
	flags.IntVar(&c.maxInFlight, "max-in-flight", 10000, "open loop: calls outstanding at most (then sends wait, and count as late)")
	flags.Float64Var(&c.startAt, "start-at", 0, "Unix time to start sending at, so several processes start together")
	flags.BoolVar(&c.progress, "progress", false, "print 'progress ELAPSED_S OK FAILED' lines on stderr")
	flags.StringVar(&c.cpuProfile, "cpuprofile", "", "write a Go CPU profile of the run here (go tool pprof)")
	flags.StringVar(&c.tls.ca, "ca", "", "TLS: PEM file of the CA that signed the server's certificate")
	flags.StringVar(&c.tls.cert, "cert", "", "TLS: client certificate (PEM), with --key")
	flags.StringVar(&c.tls.key, "key", "", "TLS: client private key (PEM)")
	flags.StringVar(&c.tls.serverName, "server-name", "", "TLS: name to verify the server's certificate against")
	if err := flags.Parse(args); err != nil {
		return c, err
	}
	seconds := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	c.duration, c.warmup, c.timeout = seconds(duration), seconds(warmup), seconds(timeout)
	return c, c.check()
}

// check names the first setting that cannot work.
func (c config) check() error {
	switch {
	case c.target == "":
		return errors.New("--target is required")
	case c.requests == "":
		return errors.New("--requests is required")
	case c.mode != "open" && c.mode != "closed":
		return fmt.Errorf("--mode must be open or closed, got %q", c.mode)
	case c.arrivals != "poisson" && c.arrivals != "constant":
		return fmt.Errorf("--arrivals must be poisson or constant, got %q", c.arrivals)
	case c.mode == "open" && !(c.rate > 0 && c.rate < 1e9):
		return fmt.Errorf("--rate must be a positive number of calls per second, got %g", c.rate)
	case (c.duration > 0) == (c.count > 0):
		return errors.New("give exactly one of a positive --duration and --count")
	case c.warmup < 0 || c.timeout <= 0:
		return errors.New("--warmup must be >= 0 and --timeout > 0 seconds")
	case c.concurrency < 1 || c.channels < 1 || c.maxInFlight < 1:
		return errors.New("--concurrency, --channels and --max-in-flight must be at least 1")
	}
	return c.tls.check()
}

func main() {
	// The heap is small and its garbage is each call's: collecting at 10x the live heap, not 2x, keeps
	// the collector's share of the client's CPU small without letting memory grow far.
	debug.SetGCPercent(1000)
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fail(exitBadArgs, err)
	}
	requests, err := readRequests(cfg.requests)
	if err == nil {
		err = checkRequests(cfg.method, requests)
	}
	if err != nil {
		fail(exitBadArgs, err)
	}
	conns, err := connect(cfg)
	if err != nil {
		fail(exitUnavailable, err)
	}
	defer closeAll(conns)
	if cfg.startAt > 0 {
		time.Sleep(time.Until(time.UnixMicro(int64(cfg.startAt * 1e6))))
	}
	if cfg.cpuProfile != "" {
		stopProfile, err := startProfile(cfg.cpuProfile)
		if err != nil {
			fail(exitBadArgs, err)
		}
		defer stopProfile()
	}
	before := cpuTimes()
	r := newRunner(cfg, conns, requests)
	stop := r.reportProgress()
	var result outcome
	if cfg.mode == "open" {
		result = r.openLoop()
	} else {
		result = r.closedLoop()
	}
	stop()
	after := cpuTimes()
	result.cpuSeconds = [2]float64{after[0] - before[0], after[1] - before[1]}
	if err := writeResult(cfg, result); err != nil {
		fail(1, err)
	}
}

// startProfile starts Go's CPU profiler into path; the returned function stops it.
func startProfile(path string) (func(), error) {
	file, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(file); err != nil {
		file.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		file.Close()
	}, nil
}

func fail(code int, err error) {
	fmt.Fprintf(os.Stderr, "rtscore-loadgen: %v\n", err)
	os.Exit(code)
}

// reportProgress prints the counters four times a second until the returned function is called.
func (r *runner) reportProgress() func() {
	if !r.cfg.progress {
		return func() {}
	}
	ticker := time.NewTicker(250 * time.Millisecond)
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-ticker.C:
				fmt.Fprintf(os.Stderr, "progress %.3f %d %d\n", time.Since(r.t0).Seconds(), r.ok.Load(), r.failed.Load())
			case <-quit:
				return
			}
		}
	}()
	return func() {
		ticker.Stop()
		close(quit)
		<-finished
	}
}
