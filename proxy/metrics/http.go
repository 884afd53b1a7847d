package metrics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Health is what the probes report: ready once the config is loaded and the listeners
// are up, not ready again while draining. Liveness only says the process answers.
type Health struct {
	ready    atomic.Bool
	draining atomic.Bool
}

// SetReady marks the data plane up.
func (h *Health) SetReady() { h.ready.Store(true) }

// SetDraining marks the data plane as going away: /readyz answers 503 from now on.
func (h *Health) SetDraining() { h.draining.Store(true) }

// Ready reports whether /readyz answers 200.
func (h *Health) Ready() bool { return h.ready.Load() && !h.draining.Load() }

// Server answers GET /metrics, /readyz and /healthz, one request per connection.
//
// It is not net/http's server: that one, with its HTTP/2 support, would add about 3 MB
// to the binary to serve three paths to a local scraper and the kubelet, both of which
// are content with HTTP/1.1 and Connection: close. Requests are parsed by
// http.ReadRequest, which the binary links anyway.
type Server struct {
	Registry *Registry
	Health   *Health

	mu     sync.Mutex
	ln     net.Listener
	conns  sync.WaitGroup
	closed bool
}

// Bounds on what a client may hold: these endpoints are for a scraper and a prober.
const (
	requestTimeout = 5 * time.Second
	maxRequest     = 8 << 10
	maxClients     = 16
)

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("metrics: server closed")

// Serve answers on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.ln = ln
	s.mu.Unlock()
	slots := make(chan struct{}, maxClients)
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("metrics: %w", err)
		}
		select {
		case slots <- struct{}{}:
		default:
			c.Close() // a scraper retries; an unbounded backlog would not help it
			continue
		}
		s.conns.Add(1)
		go func() {
			defer func() { <-slots; s.conns.Done() }()
			s.serveConn(c)
		}()
	}
}

// Close stops Serve and waits for the requests in flight, which are bounded in time.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	ln := s.ln
	s.mu.Unlock()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	s.conns.Wait()
	return err
}

func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(requestTimeout))
	req, err := http.ReadRequest(bufio.NewReader(io.LimitReader(c, maxRequest)))
	if err != nil {
		writeResponse(c, http.StatusBadRequest, "text/plain; charset=utf-8", []byte("bad request\n"), false)
		return
	}
	status, ctype, body := s.respond(req.Method, req.URL.Path)
	writeResponse(c, status, ctype, body, req.Method == http.MethodHead)
}

// respond is the routing, apart from the wire.
func (s *Server) respond(method, path string) (status int, contentType string, body []byte) {
	const text = "text/plain; charset=utf-8"
	if method != http.MethodGet && method != http.MethodHead {
		return http.StatusMethodNotAllowed, text, []byte("method not allowed\n")
	}
	switch path {
	case "/metrics":
		var b bytes.Buffer
		s.Registry.WriteTo(&b)
		return http.StatusOK, ContentType, b.Bytes()
	case "/readyz":
		switch {
		case s.Health.draining.Load():
			return http.StatusServiceUnavailable, text, []byte("draining\n")
		case !s.Health.ready.Load():
			return http.StatusServiceUnavailable, text, []byte("starting\n")
		}
		return http.StatusOK, text, []byte("ok\n")
	case "/healthz":
		return http.StatusOK, text, []byte("ok\n")
	}
	return http.StatusNotFound, text, []byte("not found\n")
}

func writeResponse(w io.Writer, status int, contentType string, body []byte, head bool) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		status, http.StatusText(status), contentType, len(body))
	if !head {
		b.Write(body)
	}
	w.Write(b.Bytes())
}
