//go:build linux

package h1

import (
	"fmt"
	"net"
	"sync"
	"syscall"
)

const watchSupported = true

// The disconnect watcher: one epoll set, separate from the Go runtime's,
// holds every client connection with EPOLLRDHUP, edge-triggered. It wakes
// only when a client closes its side or resets the connection, never for
// data, so a connection costs one epoll_ctl when it opens and one when it
// closes, and a request costs nothing. One goroutine, started with the first
// connection and kept for the life of the process, waits in epoll_wait and
// cancels the request in flight on the connection that ended.
type watcher struct {
	once sync.Once
	epfd int
	err  error

	mu   sync.Mutex
	byID map[int32]*watched
	next int32
}

var theWatcher watcher

// epollET is EPOLLET as the unsigned bit the event mask holds.
const epollET = uint32(1) << 31

// watched is one connection in the watcher's set.
type watched struct {
	id   int32 // the epoll event's data; ids are not reused for 2^31 connections
	rc   syscall.RawConn
	gone func()
}

func (w *watcher) start() {
	w.epfd, w.err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if w.err != nil {
		w.err = fmt.Errorf("h1: epoll_create1: %w", w.err)
		return
	}
	w.byID = map[int32]*watched{}
	go w.loop()
}

func (w *watcher) loop() {
	events := make([]syscall.EpollEvent, 64)
	for {
		n, err := syscall.EpollWait(w.epfd, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			panic(fmt.Sprintf("h1: epoll_wait: %v", err)) // a broken epoll set would hide every disconnect
		}
		for _, ev := range events[:n] {
			w.mu.Lock()
			wd := w.byID[ev.Fd]
			w.mu.Unlock()
			if wd != nil {
				wd.gone()
			}
		}
	}
}

// watch adds nc to the set; gone runs (on the watcher's goroutine) when the
// client closes or resets it.
func watch(nc net.Conn, gone func()) (*watched, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("h1: %T has no file descriptor to watch", nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("h1: watch connection: %w", err)
	}
	w := &theWatcher
	w.once.Do(w.start)
	if w.err != nil {
		return nil, w.err
	}
	wd := &watched{rc: rc, gone: gone}
	w.mu.Lock()
	for {
		w.next++
		if w.next <= 0 {
			w.next = 1
		}
		if _, taken := w.byID[w.next]; !taken {
			break
		}
	}
	wd.id = w.next
	w.byID[wd.id] = wd
	w.mu.Unlock()
	var cerr error
	err = rc.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLRDHUP | epollET, Fd: wd.id}
		cerr = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		w.forget(wd)
		return nil, fmt.Errorf("h1: epoll_ctl: %w", err)
	}
	return wd, nil
}

// stop takes the connection out of the set; call it before closing the
// connection, so its descriptor's number can be reused at once.
func (wd *watched) stop() {
	if wd == nil {
		return
	}
	w := &theWatcher
	_ = wd.rc.Control(func(fd uintptr) {
		_ = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
	w.forget(wd)
}

func (w *watcher) forget(wd *watched) {
	w.mu.Lock()
	delete(w.byID, wd.id)
	w.mu.Unlock()
}
