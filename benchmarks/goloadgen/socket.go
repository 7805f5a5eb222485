package main

import (
	"context"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawSocket is a TCP connection whose reads and writes are raw system calls on its non-blocking
// socket, waiting for readiness through Go's poller only when the kernel says EAGAIN. Go's ordinary
// system calls wake the runtime's monitor thread whenever it sleeps (nearly always, between the calls
// of an open loop), which then polls every 20 us for a while: at 2,000 calls/s that thread alone cost
// a fifth of the client's CPU. A read or write on a non-blocking socket never blocks, so it may keep
// its P.
type rawSocket struct {
	*net.TCPConn
	raw syscall.RawConn
}

// dialRaw is a gRPC dialer of rawSockets.
func dialRaw(ctx context.Context, address string) (net.Conn, error) {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		return conn, nil
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return conn, nil
	}
	return &rawSocket{TCPConn: tcp, raw: raw}, nil
}

func (s *rawSocket) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n uintptr
	var errno syscall.Errno
	err := s.raw.Read(func(fd uintptr) bool {
		for {
			n, _, errno = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
			if errno != syscall.EINTR {
				return errno != syscall.EAGAIN
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return int(n), nil
}

func (s *rawSocket) Write(b []byte) (int, error) {
	written := 0
	var errno syscall.Errno
	err := s.raw.Write(func(fd uintptr) bool {
		for written < len(b) {
			n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[written])), uintptr(len(b)-written))
			switch e {
			case 0:
				written += int(n)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
		return true
	})
	if err == nil && errno != 0 {
		err = os.NewSyscallError("write", errno)
	}
	return written, err
}
