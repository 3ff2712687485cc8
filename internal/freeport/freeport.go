// Package freeport hands tests a loopback port that a process started
// later (a paygate binary, a redis-server) is to bind.
//
// The port is taken below the kernel's ephemeral range
// (ip_local_port_range): a port the kernel lent for 127.0.0.1:0 and took
// back is lent again, under a whole suite's load, to another test's
// listener or to an outgoing connection's source port before the process
// binds it ("bind: address already in use"). Below the range neither
// lands. A port is not handed out twice on one host while the process it
// was handed to runs: in that process, and in the other test binaries go
// test runs beside it, whose own choice may fall on it before its server
// bound it (lockPort). It is for tests only.
package freeport

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// base is the lowest port handed out: above the ports services keep
// (Redis's 6379, PostgreSQL's 5432 and the like).
const base = 10000

var (
	mu    sync.Mutex
	taken = map[int]bool{} // handed out
)

// Port is a loopback port nothing listens on now, and neither does any
// port+offset of also (a Redis cluster node's bus port, port+10000), all
// below the ephemeral range and none handed out before.
func Port(t testing.TB, also ...int) int {
	t.Helper()
	hi := ephemeralLow()
	for _, o := range also {
		hi = min(hi, ephemeralLow()-o)
	}
	if hi <= base {
		t.Fatalf("freeport: no room below the ephemeral range (%d) for offsets %v", ephemeralLow(), also)
	}
	mu.Lock()
	defer mu.Unlock()
	for range 1000 {
		p := candidate(base, hi)
		if !usable(t, p) {
			continue
		}
		ok := true
		for _, o := range also {
			if !usable(t, p+o) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		taken[p] = true
		for _, o := range also {
			taken[p+o] = true
		}
		return p
	}
	t.Fatalf("freeport: no free loopback port between %d and %d", base, hi)
	return 0
}

// candidate is the port Port tries next, from lo up to hi (excluded).
var candidate = random

func random(lo, hi int) int { return lo + rand.IntN(hi-lo) }

// Addr is Port as a "127.0.0.1:port" address.
func Addr(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(Port(t))
}

// usable reports whether p was not handed out before, by this process or
// another one (lockPort), and nothing listens there.
func usable(t testing.TB, p int) bool {
	t.Helper()
	return !taken[p] && lockPort(t, p) && free(p)
}

func free(p int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range: 32768,
// Linux's default, where /proc does not say (another system).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil || lo <= base+1000 {
		return 32768
	}
	return lo
}
