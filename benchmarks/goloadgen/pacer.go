package main

import (
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sleepFloor: a send due sooner than this leaves at once instead of sleeping for it.
const sleepFloor = 20 * time.Microsecond

// pacer sleeps until each send is due on a timerfd(2) read through Go's network poller: the kernel's
// high-resolution timer wakes it within microseconds (Go's own timers wake up to a millisecond late,
// since the poller waits in whole milliseconds), and while it waits its thread holds no P, so the
// calls it starts run on the same thread and nothing spins. (A thread of its own sleeping in
// nanosleep(2) kept a P busy: every call it started had to be stolen by another thread, woken for it.)
// Without a timerfd it sleeps on Go's timer.
type pacer struct {
	fd   int
	file *os.File
	raw  syscall.RawConn
	buf  [8]byte
}

func newPacer() *pacer {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return &pacer{fd: -1}
	}
	// A non-blocking descriptor makes a File that reads through the poller.
	file := os.NewFile(uintptr(fd), "timerfd")
	raw, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return &pacer{fd: -1}
	}
	return &pacer{fd: fd, file: file, raw: raw}
}

// sleepUntil returns at t, or at once when t is less than sleepFloor away.
func (p *pacer) sleepUntil(t time.Time) {
	wait := time.Until(t)
	if wait <= sleepFloor {
		return
	}
	if p.fd < 0 {
		time.Sleep(wait)
		return
	}
	// Raw system calls, like rawSocket's, so that the runtime's monitor thread stays asleep.
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(wait))}
	_, _, errno := syscall.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(p.fd), 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
	if errno != 0 {
		time.Sleep(wait)
		return
	}
	_ = p.raw.Read(func(fd uintptr) bool {
		_, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p.buf[0])), uintptr(len(p.buf)))
		return errno != syscall.EAGAIN && errno != syscall.EINTR
	})
}

func (p *pacer) close() {
	if p.file != nil {
		_ = p.file.Close()
	}
}

// callProcs sets how many Ps run the calls: half the cores (unless GOMAXPROCS says otherwise), the rest
// are the server's, and fewer Ps spin less looking for work.
func callProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(1, runtime.NumCPU()/2))
	}
}
