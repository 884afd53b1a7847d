package httpproxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"syscall"

	"github.com/proxychain/proxychain/proxy"
)

// Limits on a request head.
const (
	DefaultMaxHeaderBytes = 16 << 10
	MaxHeaderCount        = 100
)

// Errors a handshake ends with; each has been answered with an HTTP status first.
var (
	ErrHeaderTooLarge = errors.New("httpproxy: request head too large")
	ErrAuthRequired   = errors.New("httpproxy: proxy authentication required")
	ErrBadRequest     = errors.New("httpproxy: bad request")
)

// ServerOptions configures an HTTP proxy inbound.
type ServerOptions struct {
	// Accounts maps user names to passwords for Basic proxy authentication. Empty means
	// no authentication.
	Accounts map[string]string
	// MaxHeaderBytes bounds the request line and header fields together;
	// 0 means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	Logger         *slog.Logger
}

// Server is the HTTP proxy inbound.
type Server struct {
	accounts       map[string][sha256.Size]byte
	maxHeaderBytes int
	log            *slog.Logger
}

var _ proxy.Inbound = (*Server)(nil)

// NewServer returns an HTTP proxy inbound.
func NewServer(opts ServerOptions) *Server {
	s := &Server{maxHeaderBytes: opts.MaxHeaderBytes, log: opts.Logger}
	if s.maxHeaderBytes <= 0 {
		s.maxHeaderBytes = DefaultMaxHeaderBytes
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if len(opts.Accounts) > 0 {
		// Hashed so that every comparison takes the same time whatever the lengths.
		s.accounts = make(map[string][sha256.Size]byte, len(opts.Accounts))
		for user, pass := range opts.Accounts {
			s.accounts[user] = sha256.Sum256([]byte(pass))
		}
	}
	return s
}

// Handshake reads one request head and returns its destination. For CONNECT the Answer
// reports the dial; for a forwarded request it reports only a failed dial, since the
// origin's response is the answer.
func (s *Server) Handshake(ctx context.Context, conn net.Conn) (*proxy.Request, error) {
	limited := &io.LimitedReader{R: conn, N: int64(s.maxHeaderBytes)}
	br := bufio.NewReader(limited)
	req, err := http.ReadRequest(br)
	if err != nil {
		if limited.N == 0 {
			writeStatus(conn, http.StatusRequestHeaderFieldsTooLarge, "", "request head larger than "+strconv.Itoa(s.maxHeaderBytes)+" bytes")
			return nil, fmt.Errorf("%w (over %d bytes)", ErrHeaderTooLarge, s.maxHeaderBytes)
		}
		if err == io.EOF {
			return nil, fmt.Errorf("httpproxy: read request: %w", err)
		}
		writeStatus(conn, http.StatusBadRequest, "", "malformed request")
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	// The body, if any, is read through the same buffer, no longer bounded by the head's limit.
	limited.N = math.MaxInt64

	if n := headerCount(req.Header); n > MaxHeaderCount {
		writeStatus(conn, http.StatusRequestHeaderFieldsTooLarge, "", "too many header fields")
		return nil, fmt.Errorf("%w (%d fields, limit %d)", ErrHeaderTooLarge, n, MaxHeaderCount)
	}
	if req.ProtoMajor != 1 {
		writeStatus(conn, http.StatusHTTPVersionNotSupported, "", "HTTP/1.x only")
		return nil, fmt.Errorf("%w: protocol %s", ErrBadRequest, req.Proto)
	}
	if s.accounts != nil {
		if user, ok := s.authorized(req.Header.Get("Proxy-Authorization")); !ok {
			s.log.Info("httpproxy: authentication failed", "user", user, "remote", conn.RemoteAddr())
			writeStatus(conn, http.StatusProxyAuthRequired, "Proxy-Authenticate: Basic realm=\"proxychain\"\r\n", "proxy authentication required")
			return nil, ErrAuthRequired
		}
	}
	if req.Method == http.MethodConnect {
		return s.connect(conn, br, req)
	}
	return s.forward(conn, br, req)
}

func (s *Server) connect(conn net.Conn, br *bufio.Reader, req *http.Request) (*proxy.Request, error) {
	dest := req.URL.Host
	if err := checkAuthority(dest); err != nil || req.URL.Path != "" {
		writeStatus(conn, http.StatusBadRequest, "", "CONNECT needs host:port")
		return nil, fmt.Errorf("%w: CONNECT target %q", ErrBadRequest, req.RequestURI)
	}
	answer := func(dialErr error) error {
		var err error
		if dialErr == nil {
			_, err = io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
		} else {
			err = writeDialFailure(conn, dialErr)
		}
		if err != nil {
			return fmt.Errorf("httpproxy: write CONNECT answer: %w", err)
		}
		return nil
	}
	return &proxy.Request{Destination: dest, Conn: withBuffered(conn, br), Answer: answer}, nil
}

func (s *Server) forward(conn net.Conn, br *bufio.Reader, req *http.Request) (*proxy.Request, error) {
	if req.URL.Scheme != "http" || req.URL.Host == "" {
		// An origin-form request was meant for a web server, not a proxy; https:// URLs
		// arrive as CONNECT.
		writeStatus(conn, http.StatusBadRequest, "", "absolute http:// URI or CONNECT required")
		return nil, fmt.Errorf("%w: not a proxy request: %s %q", ErrBadRequest, req.Method, req.RequestURI)
	}
	port := req.URL.Port()
	if port == "" {
		port = "80"
	}
	dest := net.JoinHostPort(req.URL.Hostname(), port)
	if err := checkAuthority(dest); err != nil {
		writeStatus(conn, http.StatusBadRequest, "", "bad host in request URI")
		return nil, fmt.Errorf("%w: request URI %q", ErrBadRequest, req.RequestURI)
	}
	fc := &forwardConn{
		Conn:    conn,
		pending: originHead(req),
		body:    req.Body,
		chunked: len(req.TransferEncoding) > 0,
		rest:    br,
	}
	if fc.chunked {
		// net/http's chunked decoder does not survive a read timeout; req.Body has read
		// nothing yet, so ours takes over.
		fc.body = &chunkedReader{br: br}
	}
	answer := func(dialErr error) error {
		if dialErr == nil {
			return nil // the origin answers
		}
		if err := writeDialFailure(conn, dialErr); err != nil {
			return fmt.Errorf("httpproxy: write dial failure: %w", err)
		}
		return nil
	}
	return &proxy.Request{Destination: dest, Conn: fc, Answer: answer}, nil
}

// hopByHop are the fields that describe one connection and never pass a proxy, and the
// framing fields the upstream head sets for itself.
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authorization",
	"Proxy-Authenticate", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Content-Length", "Host",
}

// originHead writes req's head as the origin should see it: origin-form target, Host from
// the absolute URI (which wins over any Host field, RFC 9112 section 3.2.2), hop-by-hop
// fields removed, and Connection: close.
func originHead(req *http.Request) []byte {
	exclude := make(map[string]bool, len(hopByHop)+4)
	for _, k := range hopByHop {
		exclude[k] = true
	}
	for _, v := range req.Header["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				exclude[textproto.CanonicalMIMEHeaderKey(name)] = true
			}
		}
	}
	target := req.URL.RequestURI()
	if req.Method == http.MethodOptions && req.URL.Path == "" && req.URL.RawQuery == "" {
		target = "*"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.%d\r\nHost: %s\r\n", req.Method, target, req.ProtoMinor, req.URL.Host)
	req.Header.WriteSubset(&b, exclude)
	switch {
	case len(req.TransferEncoding) > 0:
		b.WriteString("Transfer-Encoding: chunked\r\n")
	case req.ContentLength > 0 || req.Header.Get("Content-Length") != "":
		fmt.Fprintf(&b, "Content-Length: %d\r\n", req.ContentLength)
	}
	b.WriteString("Connection: close\r\n\r\n")
	return []byte(b.String())
}

func headerCount(h http.Header) int {
	n := 0
	for _, v := range h {
		n += len(v)
	}
	return n
}

// checkAuthority accepts host:port with a non-empty host and a port in 1..65535.
func checkAuthority(hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return err
	}
	if host == "" || strings.ContainsAny(host, " \t\r\n/\\@[]") {
		return errors.New("bad host")
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return errors.New("bad port")
	}
	return nil
}

// authorized checks Basic credentials; it returns the user name offered, for the log.
func (s *Server) authorized(header string) (string, bool) {
	scheme, encoded, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", false
	}
	decoded, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return "", false
	}
	user, pass, ok := strings.Cut(string(decoded), ":")
	if !ok {
		return "", false
	}
	want, known := s.accounts[user]
	got := sha256.Sum256([]byte(pass))
	return user, subtle.ConstantTimeCompare(want[:], got[:]) == 1 && known
}

// writeDialFailure answers a failed dial with 502 and a short reason that names the kind
// of failure but nothing of the chain behind it.
func writeDialFailure(conn net.Conn, dialErr error) error {
	return writeStatus(conn, http.StatusBadGateway, "", "upstream "+dialFailure(dialErr))
}

func dialFailure(err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &dnsErr):
		return "host not found"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timed out"
	}
	return "dial failed"
}

// writeStatus writes a complete response that ends the connection.
func writeStatus(conn net.Conn, code int, extraHeaders, body string) error {
	body += "\n"
	_, err := fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\n%sContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, http.StatusText(code), extraHeaders, len(body), body)
	return err
}
