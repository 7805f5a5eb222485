// rtscore-relay: the `e2e-floor-native` target of `rtscore bench e2e`, the extractor's hops made by a
// native server, beside `e2e-floor` (benchmarks/relay_floor.py), which makes the same hops in Python.
//
// Per `rtscore.v1.Extractor/Evaluate` call it makes the round trips an extractor makes: one Redis PING
// (go-redis) and one `rtscore.v1.Scorer/Score` call (a fixed serialized request, sent as bytes, to
// --scorer), then sends a fixed serialized Decision. Nothing is parsed, computed or serialized per call.
// Each hop has the extractor's deadline and the extractor's answer to a late one, as in the Python
// relay: a PING past --velocity-timeout-ms is given up and the call goes on (counted, said on stderr at
// exit); a Score call that fails fails the call with the scorer's status. Prints `listening on
// HOST:PORT` once it serves, and stops on SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"rtscore/benchmarks/goloadgen/rawcodec"
)

const (
	extractorService = "rtscore.v1.Extractor"
	scoreMethod      = "/rtscore.v1.Scorer/Score"
)

type relay struct {
	redis           *redis.Client
	scorer          *grpc.ClientConn
	request         []byte
	decision        []byte
	timeout         time.Duration
	velocityTimeout time.Duration
	redisLate       atomic.Int64 // PINGs given up (the extractor would have answered from memory)
}

func (r *relay) evaluate(_ any, ctx context.Context, decode func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	var transaction []byte
	if err := decode(&transaction); err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, r.velocityTimeout)
	err := r.redis.Ping(pingCtx).Err()
	cancel()
	if err != nil {
		r.redisLate.Add(1)
	}
	scoreCtx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var reply []byte
	if err := r.scorer.Invoke(scoreCtx, scoreMethod, &r.request, &reply, grpc.ForceCodecV2(rawcodec.Codec{})); err != nil {
		s := status.Convert(err)
		return nil, status.Errorf(s.Code(), "scorer: %s", s.Message())
	}
	return &r.decision, nil
}

func run() error {
	scorer := flag.String("scorer", "", "HOST:PORT answering rtscore.v1.Scorer/Score")
	redisURL := flag.String("redis-url", "", "the Redis each call pings")
	requestFile := flag.String("request", "", "a serialized ScoreRequest to send")
	decisionFile := flag.String("response", "", "the serialized Decision to answer with")
	timeoutMs := flag.Float64("timeout-ms", 50, "Score call deadline")
	velocityMs := flag.Float64("velocity-timeout-ms", 20, "time given to the Redis call, then given up")
	host := flag.String("host", "127.0.0.1", "interface to listen on")
	port := flag.Int("port", 0, "0 picks a free port, printed once listening")
	flag.Parse()
	if *scorer == "" || *redisURL == "" || *requestFile == "" || *decisionFile == "" {
		return errors.New("--scorer, --redis-url, --request and --response are required")
	}
	request, err := os.ReadFile(*requestFile)
	if err != nil {
		return err
	}
	decision, err := os.ReadFile(*decisionFile)
	if err != nil {
		return err
	}
	options, err := redis.ParseURL(*redisURL)
	if err != nil {
		return err
	}
	options.ContextTimeoutEnabled = true // the PING's deadline is the context's, as in the extractor
	client := redis.NewClient(options)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil { // fail at start, not on the first call
		return fmt.Errorf("redis: %w", err)
	}
	conn, err := grpc.NewClient(*scorer, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	var reply []byte
	if err := conn.Invoke(ctx, scoreMethod, &request, &reply, grpc.ForceCodecV2(rawcodec.Codec{})); err != nil {
		return fmt.Errorf("scorer %s: %w", *scorer, err) // it answers before the port is announced
	}
	r := &relay{
		redis: client, scorer: conn, request: request, decision: decision,
		timeout:         time.Duration(*timeoutMs * float64(time.Millisecond)),
		velocityTimeout: time.Duration(*velocityMs * float64(time.Millisecond)),
	}
	listener, err := net.Listen("tcp", net.JoinHostPort(*host, fmt.Sprint(*port)))
	if err != nil {
		return err
	}
	server := grpc.NewServer(grpc.ForceServerCodecV2(rawcodec.Codec{}))
	server.RegisterService(&grpc.ServiceDesc{
		ServiceName: extractorService,
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Evaluate", Handler: r.evaluate}},
	}, nil)
	healthServer := health.NewServer()
	healthServer.SetServingStatus(extractorService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(server, healthServer)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		healthServer.Shutdown()
		server.GracefulStop()
	}()
	fmt.Printf("listening on %s (relaying to Redis and %s)\n", listener.Addr(), *scorer)
	if err := server.Serve(listener); err != nil {
		return err
	}
	if late := r.redisLate.Load(); late > 0 {
		fmt.Fprintf(os.Stderr, "native relay: %d Redis calls given up after %g ms\n", late, *velocityMs)
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "native relay: %v\n", err)
		os.Exit(1)
	}
}
