package redirect

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ip6tSOOriginalDst is IP6T_SO_ORIGINAL_DST from linux/netfilter_ipv6/ip6_tables.h,
// which x/sys/unix does not export. It shares its number with SO_ORIGINAL_DST.
const ip6tSOOriginalDst = 80

// originalDst asks conntrack where conn was headed before REDIRECT rewrote it. It works on
// the socket in place (Control), so the descriptor is neither duplicated nor switched
// to blocking mode.
func originalDst(conn *net.TCPConn) (netip.AddrPort, error) {
	local, ok := conn.LocalAddr().(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}, ErrNotTCP
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("redirect: %w", err)
	}
	// An IPv4 connection accepted on a dual-stack socket reports a v4-mapped local address;
	// conntrack tracked it as IPv4, so it is asked at the IPv4 level.
	level, opt := unix.SOL_IP, unix.SO_ORIGINAL_DST
	if local.AddrPort().Addr().Unmap().Is6() {
		level, opt = unix.SOL_IPV6, ip6tSOOriginalDst
	}
	var (
		addr    netip.AddrPort
		sockErr error
	)
	err = rc.Control(func(fd uintptr) {
		addr, sockErr = getOriginalDst(int(fd), level, opt)
	})
	if err == nil {
		err = sockErr
	}
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("redirect: original destination: %w", err)
	}
	return addr, nil
}

// getOriginalDst reads the sockaddr_in or sockaddr_in6 the option returns. The fields
// are read from bytes: the family is in host order, the port in network order.
func getOriginalDst(fd, level, opt int) (netip.AddrPort, error) {
	var raw [unix.SizeofSockaddrInet6]byte
	size := uint32(len(raw))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&raw[0])), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return netip.AddrPort{}, errno
	}
	family := *(*uint16)(unsafe.Pointer(&raw[0]))
	port := binary.BigEndian.Uint16(raw[2:4])
	switch {
	case family == unix.AF_INET && size >= unix.SizeofSockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[4:8])), port), nil
	case family == unix.AF_INET6 && size >= unix.SizeofSockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(raw[8:24])), port), nil
	}
	return netip.AddrPort{}, fmt.Errorf("unexpected address family %d (%d bytes)", family, size)
}
