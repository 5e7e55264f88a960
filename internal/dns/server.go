package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// maxQuerySize is the read buffer for a UDP query: a question with EDNS0
// options fits many times over; the pool of such buffers stays small.
const maxQuerySize = 4096

// shutdownTimeout bounds how long Serve waits for in-flight queries.
const shutdownTimeout = 2 * time.Second

// Server serves DNS over UDP and TCP on a set of addresses.
type Server struct {
	addrs   []string
	servers []*dns.Server
}

// Listen binds UDP and TCP sockets for every "ip:port" of addrs, for h.
// Port 0 picks a free port, the same for UDP and TCP. Sockets are bound
// with IP_FREEBIND, so the server can start before its address is on lo,
// and SO_REUSEPORT, so a restarted agent binds while the old one still
// runs (the kernel then spreads queries over both until the old one
// exits).
func Listen(addrs []string, h dns.Handler) (*Server, error) {
	s := &Server{}
	for _, a := range addrs {
		pc, ln, err := listenPair(a)
		if err != nil {
			s.close()
			return nil, err
		}
		s.addrs = append(s.addrs, ln.Addr().String())
		s.servers = append(s.servers,
			&dns.Server{PacketConn: pc, Handler: h, UDPSize: maxQuerySize},
			&dns.Server{Listener: ln, Handler: h})
	}
	return s, nil
}

// Addrs returns the bound "ip:port" addresses, in Listen's order.
func (s *Server) Addrs() []string { return s.addrs }

// Serve answers queries until ctx ends, then stops listening and waits
// (a short while) for queries in flight. It returns the first error of a
// listener that failed before that.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, len(s.servers))
	for _, srv := range s.servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { errc <- srv.ActivateAndServe() }()
		// Shutting down a miekg server that has not started yet is a no-op
		// that leaves it serving; wait until it has.
		select {
		case <-started:
		case err := <-errc:
			s.shutdown()
			return fmt.Errorf("dns server: %w", err)
		}
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("dns server: %w", err)
	}
	s.shutdown()
	return err
}

func (s *Server) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	for _, srv := range s.servers {
		_ = srv.ShutdownContext(ctx) // not started, or in-flight queries cut off: nothing left to do
	}
}

// close releases the sockets of a server that never served.
func (s *Server) close() {
	for _, srv := range s.servers {
		if srv.PacketConn != nil {
			srv.PacketConn.Close()
		}
		if srv.Listener != nil {
			srv.Listener.Close()
		}
	}
}

// listenPair binds UDP and TCP on addr; with port 0, TCP takes the port UDP
// got, retrying a few times if that port is taken for TCP.
func listenPair(addr string) (net.PacketConn, net.Listener, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen address %q: want ip:port: %w", addr, err)
	}
	lc := net.ListenConfig{Control: bindOptions}
	for range 10 {
		pc, err := lc.ListenPacket(context.Background(), "udp", ap.String())
		if err != nil {
			return nil, nil, fmt.Errorf("listen on %s/udp: %w", ap, err)
		}
		tcpAddr := ap
		if ap.Port() == 0 {
			tcpAddr = netip.AddrPortFrom(ap.Addr(), uint16(pc.LocalAddr().(*net.UDPAddr).Port))
		}
		ln, err := lc.Listen(context.Background(), "tcp", tcpAddr.String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if ap.Port() != 0 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("listen on %s/tcp: %w", tcpAddr, err)
		}
	}
	return nil, nil, fmt.Errorf("listen on %s: no port free for both UDP and TCP after 10 tries", ap)
}

// bindOptions sets SO_REUSEPORT and IP_FREEBIND (IPV6_FREEBIND for IPv6)
// before bind.
func bindOptions(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
			serr = fmt.Errorf("set SO_REUSEPORT: %w", serr)
			return
		}
		if network[len(network)-1] == '6' {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
		}
		if serr != nil {
			serr = fmt.Errorf("set IP_FREEBIND: %w", serr)
		}
	})
	if err != nil {
		return fmt.Errorf("bind %s %s: %w", network, address, err)
	}
	if serr != nil {
		return fmt.Errorf("bind %s %s: %w", network, address, serr)
	}
	return nil
}
