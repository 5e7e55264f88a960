package sandbox

import (
	"net"
	"runtime"
	"strings"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// ServeDNS answers A queries for names (lower case, with the final dot) on
// h's address, port 53 (UDP), until the test ends: the sandbox's upstream
// resolver for --dns-upstream. Other names get NXDOMAIN.
func (s *Sandbox) ServeDNS(h *Host, names map[string]string) {
	s.t.Helper()
	pc, err := listenUDPIn(h.NetnsPath(), net.JoinHostPort(h.IP, "53"))
	if err != nil {
		s.t.Fatalf("resolver in %s: %v", h.Name, err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		q := req.Question[0]
		ip, ok := names[strings.ToLower(q.Name)]
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30},
				A: net.ParseIP(ip)})
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	s.t.Cleanup(func() { _ = srv.Shutdown() })
}

// listenUDPIn makes a UDP socket in the network namespace at path, on a
// locked thread switched there and back.
func listenUDPIn(path, addr string) (net.PacketConn, error) {
	runtime.LockOSThread()
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer unix.Close(self)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	pc, err := net.ListenPacket("udp4", addr)
	if unix.Setns(self, unix.CLONE_NEWNET) == nil {
		runtime.UnlockOSThread()
	}
	return pc, err
}
