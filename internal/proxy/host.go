package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// host is the node's kernel outside the nftables table: sysctls and the
// cluster DNS address on lo.
type host interface {
	// CheckBridgeNetfilter makes sure bridged traffic reaches netfilter.
	CheckBridgeNetfilter() error
	// EnsureLoopbackAddr puts a on lo as a /32 (idempotent).
	EnsureLoopbackAddr(a netip.Addr) error
	// RemoveLoopbackAddr takes a off lo (idempotent).
	RemoveLoopbackAddr(a netip.Addr) error
}

// linuxHost is the host of the process's own network namespace.
type linuxHost struct {
	procSys string // "/proc/sys"
	nl      *netlink.Handle
}

func newLinuxHost() *linuxHost { return &linuxHost{procSys: "/proc/sys", nl: &netlink.Handle{}} }

// CheckBridgeNetfilter implements host. Without br_netfilter, replies from
// pod -> ClusterIP -> pod on one bridge never meet conntrack, skip the
// reverse NAT and the connection is reset.
func (h *linuxHost) CheckBridgeNetfilter() error {
	path := filepath.Join(h.procSys, "net/bridge/bridge-nf-call-iptables")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat("/proc/modules"); err == nil {
			_ = exec.Command("modprobe", "br_netfilter").Run() // checked below
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("bridged pod traffic would bypass netfilter and same-node pod->ClusterIP->pod replies would be reset: "+
			"%s is unavailable (%v); load br_netfilter or build the kernel with CONFIG_BRIDGE_NETFILTER", path, err)
	}
	if strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable %s (bridged pod traffic must reach netfilter): %w", path, err)
	}
	return nil
}

// EnsureLoopbackAddr implements host.
func (h *linuxHost) EnsureLoopbackAddr(a netip.Addr) error {
	lo, addr, err := h.loAddr(a)
	if err != nil {
		return err
	}
	if err := h.nl.AddrReplace(lo, addr); err != nil {
		return fmt.Errorf("add cluster DNS address %s/32 to lo: %w", a, err)
	}
	return nil
}

// RemoveLoopbackAddr implements host.
func (h *linuxHost) RemoveLoopbackAddr(a netip.Addr) error {
	lo, addr, err := h.loAddr(a)
	if err != nil {
		return err
	}
	if err := h.nl.AddrDel(lo, addr); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("remove cluster DNS address %s/32 from lo: %w", a, err)
	}
	return nil
}

// loAddr is a host-scoped /32 on lo: host scope keeps the kernel from
// choosing it as a source address for other traffic.
func (h *linuxHost) loAddr(a netip.Addr) (netlink.Link, *netlink.Addr, error) {
	lo, err := h.nl.LinkByName("lo")
	if err != nil {
		return nil, nil, fmt.Errorf("find lo: %w", err)
	}
	return lo, &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)}, Scope: unix.RT_SCOPE_HOST}, nil
}
