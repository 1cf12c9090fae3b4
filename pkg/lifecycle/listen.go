package lifecycle

import (
	"fmt"
	"net"
)

// Listen returns pre when it is not nil, otherwise a new TCP listener on
// addr. Services take an optional pre-opened listener next to each address
// so tests can open one on a free port and hand it over, instead of picking
// a port, closing it and racing other processes to bind it again.
func Listen(pre net.Listener, addr string) (net.Listener, error) {
	if pre != nil {
		return pre, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return l, nil
}
