package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/grpc/codes"
)

// The Python side's histogram: microseconds from 1 us to one hour, 3 significant digits.
const (
	lowestUs  = 1
	highestUs = 3_600_000_000
	digits    = 3
)

// resultVersion changes when a key of the result changes meaning; keys are only ever added.
const resultVersion = 1

// codeNames spells status codes as gRPC's other languages do (Python's StatusCode.name).
var codeNames = map[codes.Code]string{
	codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN",
	codes.InvalidArgument: "INVALID_ARGUMENT", codes.DeadlineExceeded: "DEADLINE_EXCEEDED",
	codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
	codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED",
	codes.OutOfRange: "OUT_OF_RANGE", codes.Unimplemented: "UNIMPLEMENTED", codes.Internal: "INTERNAL",
	codes.Unavailable: "UNAVAILABLE", codes.DataLoss: "DATA_LOSS", codes.Unauthenticated: "UNAUTHENTICATED",
}

type latencyMs struct {
	Avg    float64 `json:"avg"`
	P50    float64 `json:"p50"`
	P90    float64 `json:"p90"`
	P95    float64 `json:"p95"`
	P99    float64 `json:"p99"`
	P999   float64 `json:"p999"`
	Max    float64 `json:"max"`
	Stddev float64 `json:"stddev"`
}

type clientCPU struct {
	UserS     float64 `json:"user_s"`
	SystemS   float64 `json:"system_s"`
	Calls     int64   `json:"calls"`
	MsPerCall float64 `json:"ms_per_call"`
}

// resultJSON is the document Python reads back (benchmarks/clients.py).
type resultJSON struct {
	Version      int                `json:"version"`
	Client       string             `json:"client"`
	Target       string             `json:"target"`
	Method       string             `json:"method"`
	Mode         string             `json:"mode"`
	Sent         int                `json:"sent"`
	WindowS      float64            `json:"window_s"`
	Requests     int                `json:"requests"`
	Errors       map[string]int     `json:"errors"`
	LatencyMs    *latencyMs         `json:"latency_ms"`
	Histogram    string             `json:"histogram"`
	SendLagMs    map[string]float64 `json:"send_lag_ms"`
	LateSends    int                `json:"late_sends"`
	TimerSlackMs float64            `json:"timer_slack_ms"`
	CPU          clientCPU          `json:"cpu"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func usToMs(us float64) float64 { return math.Round(us) / 1e3 }

// writeResult summarises the run into the JSON document (and the timeline file when asked).
func writeResult(cfg config, o outcome) error {
	histogram := hdrhistogram.New(lowestUs, highestUs, digits)
	errs := map[string]int{}
	requests := 0
	for _, calls := range o.calls {
		calls.each(func(c *record) {
			requests++
			if c.code != 0 {
				errs[codeName(c.code)]++
				return
			}
			us := min(max(int64(math.Round(float64(c.latency)/1e3)), lowestUs), highestUs)
			_ = histogram.RecordValue(us)
		})
	}
	encoded, err := histogram.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return err
	}
	calls := max(o.allCalls, 1)
	cpu := o.cpuSeconds[0] + o.cpuSeconds[1]
	doc := resultJSON{
		Version: resultVersion, Client: "go", Target: cfg.target, Method: cfg.method, Mode: cfg.mode,
		Sent: o.sent, WindowS: o.window.Seconds(), Requests: requests, Errors: errs,
		Histogram: string(encoded), SendLagMs: lagSummary(o.lags), LateSends: o.late,
		TimerSlackMs: ms(timerSlack),
		CPU: clientCPU{UserS: o.cpuSeconds[0], SystemS: o.cpuSeconds[1], Calls: o.allCalls,
			MsPerCall: math.Round(1e6*cpu/float64(calls)) / 1e3},
	}
	if histogram.TotalCount() > 0 {
		at := func(q float64) float64 { return usToMs(float64(histogram.ValueAtQuantile(q))) }
		doc.LatencyMs = &latencyMs{
			Avg: usToMs(histogram.Mean()), P50: at(50), P90: at(90), P95: at(95), P99: at(99),
			P999: at(99.9), Max: usToMs(float64(histogram.Max())), Stddev: usToMs(histogram.StdDev()),
		}
	}
	if cfg.timeline != "" {
		if err := writeTimeline(cfg.timeline, o.calls); err != nil {
			return err
		}
	}
	out := os.Stdout
	if cfg.out != "-" {
		file, err := os.Create(cfg.out)
		if err != nil {
			return err
		}
		defer file.Close()
		out = file
	}
	return json.NewEncoder(out).Encode(doc)
}

func codeName(code uint32) string {
	if name, ok := codeNames[codes.Code(code)]; ok {
		return name
	}
	return codes.Code(code).String()
}

// lagSummary is p50/p99/max of how late sends left, in milliseconds.
func lagSummary(lags []time.Duration) map[string]float64 {
	summary := map[string]float64{"p50": 0, "p99": 0, "max": 0}
	if len(lags) == 0 {
		return summary
	}
	sorted := slices.Clone(lags)
	slices.Sort(sorted)
	at := func(q float64) time.Duration { return sorted[int(q*float64(len(sorted)-1))] }
	summary["p50"], summary["p99"], summary["max"] = ms(at(0.5)), ms(at(0.99)), ms(sorted[len(sorted)-1])
	return summary
}

// writeTimeline writes every measured call as four float64s: sent at (s), latency (s), status code, and
// the part of the latency spent waiting to leave (s), so a reader can also time calls from their send.
func writeTimeline(path string, all []*records) error {
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	defer file.Close()
	writer := bufio.NewWriter(file)
	var row [32]byte
	for _, calls := range all {
		calls.each(func(c *record) {
			binary.LittleEndian.PutUint64(row[0:], math.Float64bits(c.sentAt.Seconds()))
			binary.LittleEndian.PutUint64(row[8:], math.Float64bits(c.latency.Seconds()))
			binary.LittleEndian.PutUint64(row[16:], math.Float64bits(float64(c.code)))
			// the part of the latency the call spent waiting to leave (lateness past the timer slack)
			binary.LittleEndian.PutUint64(row[24:], math.Float64bits(max(c.lag-timerSlack, 0).Seconds()))
			_, _ = writer.Write(row[:])
		})
	}
	if err := writer.Flush(); err != nil {
		return err
	}
	return file.Close()
}

// cpuTimes is this process's user and system CPU seconds so far.
func cpuTimes() [2]float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return [2]float64{}
	}
	seconds := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return [2]float64{seconds(usage.Utime), seconds(usage.Stime)}
}
