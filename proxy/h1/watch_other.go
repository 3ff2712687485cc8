//go:build !linux

package h1

import (
	"errors"
	"net"
)

// Elsewhere there is no watcher: callers check Supported and use net/http's
// server, whose reader per request notices disconnects.
const watchSupported = false

type watched struct{}

func watch(net.Conn, func()) (*watched, error) {
	return nil, errors.New("h1: disconnects are watched on Linux only")
}

func (*watched) stop() {}
