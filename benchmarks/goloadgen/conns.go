package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// tlsFiles are the PEM files of a TLS connection; TLS is on when any option is given, and without a
// CA the system's roots are trusted.
type tlsFiles struct {
	ca, cert, key, serverName string
}

func (t tlsFiles) check() error {
	if (t.cert == "") != (t.key == "") {
		return errors.New("--cert and --key go together")
	}
	return nil
}

func (t tlsFiles) credentials() (credentials.TransportCredentials, error) {
	if t == (tlsFiles{}) {
		return insecure.NewCredentials(), nil
	}
	config := &tls.Config{ServerName: t.serverName, MinVersion: tls.VersionTLS12}
	if t.ca != "" {
		pem, err := os.ReadFile(t.ca)
		if err != nil {
			return nil, err
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate in it", t.ca)
		}
	}
	if t.cert != "" {
		pair, err := tls.LoadX509KeyPair(t.cert, t.key)
		if err != nil {
			return nil, err
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(config), nil
}

// windowBytes is each stream's and each connection's flow-control window: large enough that replies
// never wait for a window update.
const windowBytes = 16 << 20

// connect opens cfg.channels connections (each ClientConn is its own HTTP/2 connection) and waits until
// every one is ready, within the call deadline.
func connect(cfg config) ([]*grpc.ClientConn, error) {
	creds, err := cfg.tls.credentials()
	if err != nil {
		return nil, err
	}
	options := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// A retried call would hide a failure from the count, and buffering every request for a retry costs.
		grpc.WithDisableRetry(),
		grpc.WithDisableServiceConfig(),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32)),
		grpc.WithContextDialer(dialRaw),
		// Fixed flow-control windows turn off BDP estimation, whose PING after nearly every reply at a
		// steady rate costs a write, the server's ack a read, and a wake-up each.
		grpc.WithInitialWindowSize(windowBytes),
		grpc.WithInitialConnWindowSize(windowBytes),
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	conns := make([]*grpc.ClientConn, 0, cfg.channels)
	for range cfg.channels {
		conn, err := grpc.NewClient("passthrough:///"+cfg.target, options...)
		if err != nil {
			closeAll(conns)
			return nil, fmt.Errorf("%s: %w", cfg.target, err)
		}
		conns = append(conns, conn)
		conn.Connect()
	}
	for _, conn := range conns {
		for state := conn.GetState(); state != connectivity.Ready; state = conn.GetState() {
			if !conn.WaitForStateChange(ctx, state) {
				closeAll(conns)
				return nil, fmt.Errorf("%s: no gRPC server answered within %v", cfg.target, cfg.timeout)
			}
		}
	}
	return conns, nil
}

func closeAll(conns []*grpc.ClientConn) {
	for _, conn := range conns {
		conn.Close()
	}
}
