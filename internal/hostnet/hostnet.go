// Package hostnet reads the host's own addressing: the address of the
// default route's interface, which is what a node advertises unless told
// otherwise.
package hostnet

import (
	"bufio"
	"net"
	"os"
	"strings"
)

// DefaultIPv4 returns the IPv4 address of the interface holding the default
// route (what kube-apiserver advertises when --advertise-address is not
// given, and kubelet's default node IP), else the first up, non-loopback
// interface's, else nil.
func DefaultIPv4() net.IP {
	if name := defaultRouteInterface(); name != "" {
		if ip := interfaceIPv4(name); ip != nil {
			return ip
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	for _, i := range ifaces {
		if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagLoopback == 0 {
			if ip := interfaceIPv4(i.Name); ip != nil {
				return ip
			}
		}
	}
	return nil
}

// defaultRouteInterface reads /proc/net/route for the 0.0.0.0/0 route.
func defaultRouteInterface() string {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 7 && fields[1] == "00000000" && fields[7] == "00000000" {
			return fields[0]
		}
	}
	return ""
}

func interfaceIPv4(name string) net.IP {
	i, err := net.InterfaceByName(name)
	if err != nil {
		return nil
	}
	addrs, err := i.Addrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
			return ipn.IP.To4()
		}
	}
	return nil
}
