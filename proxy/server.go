package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Defaults for ServerOptions. The handshake deadline is absolute from accept, so a client
// trickling one byte at a time cannot extend it.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultIdleTimeout      = 300 * time.Second
	DefaultDialTimeout      = 15 * time.Second
	DefaultMaxConns         = 10000
)

// ServerOptions bounds what one inbound's clients can hold.
type ServerOptions struct {
	HandshakeTimeout time.Duration
	IdleTimeout      time.Duration
	// UplinkOnly and DownlinkOnly replace IdleTimeout once the upstream, or the client,
	// has finished sending (V2Ray's policy of the same names); zero keeps IdleTimeout.
	UplinkOnly, DownlinkOnly time.Duration
	DialTimeout              time.Duration
	MaxConns                 int // accepted connections beyond this are closed at once
	Logger                   *slog.Logger
}

func (o *ServerOptions) withDefaults() ServerOptions {
	v := *o
	if v.HandshakeTimeout <= 0 {
		v.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if v.IdleTimeout <= 0 {
		v.IdleTimeout = DefaultIdleTimeout
	}
	if v.DialTimeout <= 0 {
		v.DialTimeout = DefaultDialTimeout
	}
	if v.MaxConns <= 0 {
		v.MaxConns = DefaultMaxConns
	}
	if v.Logger == nil {
		v.Logger = slog.Default()
	}
	return v
}

func (o *ServerOptions) timeouts() Timeouts {
	return Timeouts{Idle: o.IdleTimeout, UplinkOnly: o.UplinkOnly, DownlinkOnly: o.DownlinkOnly}
}

// Server accepts connections for one Inbound and relays each request through a Dialer
// (the router, which picks an outbound).
type Server struct {
	Tag     string
	Inbound Inbound
	Dialer  Dialer
	Options ServerOptions // as Serve starts; SetOptions changes them later

	mu       sync.Mutex
	opts     *ServerOptions         // the current Options, with defaults; nil until Serve or SetOptions
	log      *slog.Logger           // opts.Logger with the inbound's tag
	conns    map[net.Conn]io.Closer // what Shutdown closes: the conn, then its relay
	closing  bool
	wg       sync.WaitGroup
	baseCtx  context.Context
	cancel   context.CancelFunc
	listener net.Listener
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("proxy: server closed")

// Serve accepts on ln until Shutdown or an accept error. ln is the server's from then
// on: Shutdown closes it, and so does Serve if Shutdown came first.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		// A Shutdown (or a reload's retire) that ran before the accept loop started
		// had no listener to close; left open, it would queue connections nobody takes.
		ln.Close()
		return ErrServerClosed
	}
	if s.opts == nil {
		s.setOptions(s.Options)
	}
	s.listener = ln
	s.conns = make(map[net.Conn]io.Closer)
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	s.mu.Unlock()

	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Anything else passes: out of descriptors (EMFILE, ENFILE) until connections
			// end, out of buffers. Returning would leave the port completing handshakes
			// that nobody accepts until the pod restarts.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.mu.Lock()
			log := s.log
			s.mu.Unlock()
			log.Warn("accept failed; retrying", "err", err, "in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		conn = NewSocket(conn)
		opts, log, ok := s.track(conn)
		if !ok {
			log.Warn("connection limit reached, refusing", "limit", opts.MaxConns, "remote", conn.RemoteAddr())
			abort(conn)
			conn.Close()
			continue
		}
		go s.serveConn(conn, opts, log)
	}
}

// SetOptions replaces the options for connections accepted from now on; open ones keep
// theirs.
func (s *Server) SetOptions(o ServerOptions) {
	s.mu.Lock()
	s.setOptions(o)
	s.mu.Unlock()
}

// setOptions is SetOptions with s.mu held.
func (s *Server) setOptions(o ServerOptions) {
	o = o.withDefaults()
	s.opts = &o
	s.log = o.Logger.With("inbound", s.Tag)
}

// serveConn runs the handshake and the dial, then hands the connection to a relay and
// returns; the connection stays tracked until the relay is done.
func (s *Server) serveConn(conn net.Conn, opts ServerOptions, log *slog.Logger) {
	relaying := false
	defer func() {
		if !relaying {
			s.untrack(conn)
		}
	}()
	ctx := s.baseCtx
	conn.SetDeadline(time.Now().Add(opts.HandshakeTimeout))
	req, err := s.Inbound.Handshake(ctx, conn)
	if err != nil {
		log.Debug("handshake failed", "remote", conn.RemoteAddr(), "err", err)
		conn.Close()
		return
	}
	conn.SetDeadline(time.Time{})
	dialCtx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	upstream, err := s.Dialer.DialContext(dialCtx, "tcp", req.Destination)
	cancel()
	if req.Answer != nil {
		if aerr := req.Answer(err); aerr != nil && err == nil {
			err = aerr
			upstream.Close()
		}
	}
	if err != nil {
		log.Info("dial failed", "remote", conn.RemoteAddr(), "destination", req.Destination, "err", err)
		req.Conn.Close()
		return
	}
	start := time.Now()
	relaying = true
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[conn] = StartRelay(req.Conn, upstream, opts.timeouts(), func(stats RelayStats, err error) {
		log.Debug("relay done", "remote", conn.RemoteAddr(), "destination", req.Destination,
			"up", stats.Up, "down", stats.Down, "duration", time.Since(start), "err", err)
		s.untrack(conn)
	})
}

// track counts c among the open connections, unless the server is closing or at its
// limit, and returns the options and logger c is served with.
func (s *Server) track(c net.Conn) (ServerOptions, *slog.Logger, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	opts := *s.opts
	if s.closing || len(s.conns) >= opts.MaxConns {
		return opts, s.log, false
	}
	s.conns[c] = c
	s.wg.Add(1)
	return opts, s.log, true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// StopAccepting closes the listener at once, so its address refuses new connections by
// the time it returns; open connections carry on until Shutdown drains them.
func (s *Server) StopAccepting() {
	s.mu.Lock()
	s.closing = true
	ln := s.listener
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

// Shutdown stops accepting, lets open connections finish until ctx is done, then closes
// whatever remains. It returns ctx's error if it had to cut connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.StopAccepting()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	open := make([]io.Closer, 0, len(s.conns))
	for _, c := range s.conns {
		open = append(open, c)
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	// Outside the lock: a relay's Close may finish it, and finishing untracks.
	for _, c := range open {
		c.Close()
	}
	<-done
	return ctx.Err()
}

// ActiveConns reports how many accepted connections are open.
func (s *Server) ActiveConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
