// Command capturecheck plays the parts of a pod in the capture test, each run inside the
// test's network namespace:
//
//	capturecheck apply -port P -uid U [-dns IP,...]   install the capture rules (init container)
//	capturecheck serve -listen A,B -sniff http,tls     the sidecar: a redirect inbound relaying
//	                                                   through a plain dialer; prints "ready",
//	                                                   then "dest <destination>" or "refused <err>"
//	                                                   per connection
//	capturecheck send -to ADDR [-size N] [-host H]     the app: send a payload (an HTTP request
//	                                                   for H first, if given), half-close, print
//	                                                   "sent <sha256> reply <answer>"
//	capturecheck streams -to ADDR -n N -size S         the app under a reload: open N connections,
//	                                                   send half of S bytes on each, print
//	                                                   "open N", wait for a line on stdin, send
//	                                                   the rest, half-close, check every reply
//	                                                   hash, print "ok N"
//	capturecheck get -url URL                          HTTP GET; print the body, exit 1 unless 200
//	capturecheck udp -to ADDR                          send one datagram
//	capturecheck udpecho -listen ADDR -then-port P     a UDP server in the pod: print "ready",
//	                                                   answer one datagram to its sender, then
//	                                                   send one of its own from the same socket
//	                                                   to the sender's host at port P; print
//	                                                   "answered <from>" and "then <outcome>"
//	capturecheck ping -to IP                           one ICMP echo (needs root); exits 0 only
//	                                                   on a reply
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/capture"
	"github.com/proxychain/proxychain/proxy/redirect"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: capturecheck apply|serve|send|udp|ping ...")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	var err error
	switch os.Args[1] {
	case "apply":
		port := fs.Int("port", 0, "redirect port")
		uid := fs.Int("uid", 0, "sidecar UID")
		dns := fs.String("dns", "", "resolvers, comma-separated")
		fs.Parse(os.Args[2:])
		err = capture.Apply(context.Background(), capture.Options{
			RedirectPort: *port, SidecarUID: *uid, DNSServers: split(*dns)})
	case "serve":
		listen := fs.String("listen", "", "addresses, comma-separated")
		sniffing := fs.String("sniff", "", "protocols, comma-separated")
		fs.Parse(os.Args[2:])
		err = serve(split(*listen), split(*sniffing))
	case "send":
		to := fs.String("to", "", "address")
		size := fs.Int("size", 64<<10, "payload bytes")
		host := fs.String("host", "", "send an HTTP request for this Host first")
		fs.Parse(os.Args[2:])
		err = send(*to, *size, *host)
	case "streams":
		to := fs.String("to", "", "address")
		n := fs.Int("n", 100, "connections")
		size := fs.Int("size", 64<<10, "payload bytes per connection")
		fs.Parse(os.Args[2:])
		err = streams(*to, *n, *size)
	case "get":
		url := fs.String("url", "", "URL")
		fs.Parse(os.Args[2:])
		err = get(*url)
	case "udp":
		to := fs.String("to", "", "address")
		fs.Parse(os.Args[2:])
		err = sendUDP(*to)
	case "udpecho":
		listen := fs.String("listen", "", "address")
		thenPort := fs.Int("then-port", 0, "port on the sender's host for a datagram the server starts")
		fs.Parse(os.Args[2:])
		err = udpEcho(*listen, *thenPort)
	case "ping":
		to := fs.String("to", "", "IPv4 address")
		fs.Parse(os.Args[2:])
		err = ping(*to)
	default:
		fail("unknown subcommand " + os.Args[1])
	}
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Println("error:", msg)
	os.Exit(1)
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// reporting prints each handshake's outcome, so the test sees what the sidecar saw.
type reporting struct {
	inner proxy.Inbound
	mu    sync.Mutex
}

func (r *reporting) Handshake(ctx context.Context, conn net.Conn) (*proxy.Request, error) {
	req, err := r.inner.Handshake(ctx, conn)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		fmt.Println("refused", err)
	} else {
		fmt.Println("dest", req.Destination)
	}
	return req, err
}

func serve(addrs, sniffing []string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	in := &reporting{inner: redirect.NewServer(redirect.ServerOptions{Sniff: sniffing, Logger: log})}
	var servers []*proxy.Server
	errs := make(chan error, len(addrs))
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return err
		}
		srv := &proxy.Server{Tag: "redirect", Inbound: in, Dialer: &net.Dialer{}, Options: proxy.ServerOptions{Logger: log}}
		servers = append(servers, srv)
		go func() { errs <- srv.Serve(ln) }()
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case err := <-errs:
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		s.Shutdown(ctx)
	}
	return nil
}

// send writes an optional HTTP request and size pseudo-random bytes, half-closes, and
// prints the hash of all it wrote next to what the target answered (its own hash).
func send(to string, size int, host string) error {
	c, err := net.DialTimeout("tcp", to, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	h := sha256.New()
	w := io.MultiWriter(c, h)
	if host != "" {
		fmt.Fprintf(w, "POST /upload HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", host, size)
	} else {
		// A fixed, protocol-free start, so sniffing cannot mistake random bytes for TLS.
		io.WriteString(w, "capturecheck\n")
	}
	rng := rand.New(rand.NewPCG(uint64(size), 1))
	buf := make([]byte, 4096)
	for left := size; left > 0; left -= len(buf) {
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		if _, err := w.Write(buf[:min(left, len(buf))]); err != nil {
			return err
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	reply, err := io.ReadAll(bufio.NewReader(c))
	if err != nil {
		return err
	}
	fmt.Printf("sent %s reply %s\n", hex.EncodeToString(h.Sum(nil)), reply)
	return nil
}

// payload returns size pseudo-random bytes determined by seed.
func payload(seed uint64, size int) []byte {
	rng := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// streams holds n connections open across whatever the test does between "open" and
// the line it writes to stdin, then finishes them and checks each end to end.
func streams(to string, n, size int) error {
	conns := make([]*net.TCPConn, n)
	sums := make([][32]byte, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range conns {
		c, err := net.DialTimeout("tcp", to, 10*time.Second)
		if err != nil {
			return fmt.Errorf("stream %d: %w", i, err)
		}
		conns[i] = c.(*net.TCPConn)
		c.SetDeadline(time.Now().Add(2 * time.Minute))
		p := payload(uint64(i), size)
		sums[i] = sha256.Sum256(p)
		if _, err := c.Write(p[:size/2]); err != nil {
			return fmt.Errorf("stream %d: first half: %w", i, err)
		}
	}
	fmt.Println("open", n)
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for the go-ahead: %w", err)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			p := payload(uint64(i), size)
			if _, err := c.Write(p[size/2:]); err != nil {
				errs[i] = fmt.Errorf("stream %d: second half: %w", i, err)
				return
			}
			if err := c.CloseWrite(); err != nil {
				errs[i] = fmt.Errorf("stream %d: %w", i, err)
				return
			}
			reply, err := io.ReadAll(c)
			if err != nil {
				errs[i] = fmt.Errorf("stream %d: reading the reply: %w", i, err)
				return
			}
			if want := hex.EncodeToString(sums[i][:]); string(reply) != want {
				errs[i] = fmt.Errorf("stream %d: target hashed %q, sent %s", i, reply, want)
			}
		})
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
			fmt.Println("error:", err)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d streams failed", failed, n)
	}
	fmt.Println("ok", n)
	return nil
}

func get(url string) error {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	os.Stdout.Write(body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

func sendUDP(to string) error {
	c, err := net.Dial("udp", to)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte("capturecheck datagram")); err != nil {
		return err
	}
	fmt.Println("sent")
	return nil
}

// udpEcho answers one datagram, then starts a flow of its own from the same socket: the
// capture must let the answer out but not the second datagram, which no one asked for.
func udpEcho(listen string, thenPort int) error {
	c, err := net.ListenPacket("udp", listen)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Println("ready")
	c.SetDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 1500)
	n, from, err := c.ReadFrom(buf)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(append([]byte("echo "), buf[:n]...), from); err != nil {
		return fmt.Errorf("answering %s: %w", from, err)
	}
	fmt.Println("answered", from)
	to := &net.UDPAddr{IP: from.(*net.UDPAddr).IP, Port: thenPort}
	if _, err := c.WriteTo([]byte("capturecheck unsolicited"), to); err != nil {
		fmt.Println("then", err) // the capture dropping it is an outcome, not a failure
	} else {
		fmt.Println("then sent")
	}
	return nil
}

func ping(to string) error {
	c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return err
	}
	defer c.Close()
	id := os.Getpid() & 0xffff
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: 1, Data: []byte("capturecheck")}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(b, &net.IPAddr{IP: net.ParseIP(to)}); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	reply := make([]byte, 1500)
	for {
		n, _, err := c.ReadFrom(reply)
		if err != nil {
			return err
		}
		m, err := icmp.ParseMessage(1, reply[:n])
		if err != nil {
			continue
		}
		if echo, ok := m.Body.(*icmp.Echo); ok && m.Type == ipv4.ICMPTypeEchoReply && echo.ID == id {
			fmt.Println("reply from " + to + " seq " + strconv.Itoa(echo.Seq))
			return nil
		}
	}
}
