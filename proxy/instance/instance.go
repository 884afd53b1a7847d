// Package instance wires a loaded config into a running data plane: every outbound
// built in chain order (parents first, each dialing its server through its parent), the
// router over them, and a proxy.Server per inbound.
//
// An outbound with several servers takes them in turn, one per connection, as V2Ray's
// round-robin picker does; a server with several users takes those in turn too.
package instance

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/chain"
	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/metrics"
	"github.com/proxychain/proxychain/proxy/router"
)

// Options tune an Instance. The zero value logs to slog.Default and listens with
// net.ListenConfig.
type Options struct {
	Logger *slog.Logger
	// Server bounds every inbound's clients; its Logger is replaced by Logger.
	Server proxy.ServerOptions
	// Listen opens an inbound's listener; tests use it to listen on port 0.
	Listen func(ctx context.Context, network, address string) (net.Listener, error)
	// Metrics, if set, counts every outbound's bytes, open connections and dials, and
	// every inbound's connections.
	Metrics *metrics.Proxy
}

// Instance is a built data plane. Reload swaps in a new config for new connections
// while established ones finish on the old.
type Instance struct {
	log        *slog.Logger
	listen     func(ctx context.Context, network, address string) (net.Listener, error)
	serverOpts proxy.ServerOptions
	metrics    *metrics.Proxy

	gen atomic.Pointer[generation] // what new connections use
	// reloading runs Reloads one at a time, so that each builds on the replay filters
	// of the generation the one before stored.
	reloading sync.Mutex

	mu        sync.Mutex
	started   bool
	stopped   bool
	listeners []*listener // one per inbound of the current config, in config order
	// serving counts Serve loops and the drains of servers a reload retired.
	serving sync.WaitGroup
	// retireCtx ends when Shutdown's drain does: retired servers then cut what remains.
	retireCtx  context.Context
	cutRetired context.CancelFunc
	retiredCut bool // a retired server's connections outlasted Shutdown's drain
}

// generation is what one config builds: outbounds, the router over them, and a
// handler per inbound.
type generation struct {
	outbounds []proxy.Outbound // config order
	byTag     map[string]proxy.Outbound
	router    *router.Router
	paths     []string
	inbounds  []inboundSpec
	// serverOpts are Options.Server with the config's policy filling what it leaves zero.
	serverOpts proxy.ServerOptions
	replay     *replayFilters
}

type inboundSpec struct {
	path    string // inbounds[i]
	address string // listen:port as configured
	handler *handler
}

// handler is what an inbound's server runs for each new connection. A reload that
// keeps the inbound's address swaps the handler and keeps the socket.
type handler struct {
	tag      string
	inbound  proxy.Inbound
	dialer   proxy.Dialer
	accepted *metrics.Counter // nil without metrics
}

// listener is one listening socket and its server. It is the server's Inbound and
// Dialer, passing each call to the current handler.
type listener struct {
	path, address string // of the inbound that last configured it; guarded by Instance.mu
	current       atomic.Pointer[handler]
	server        *proxy.Server
	ln            net.Listener
}

func (l *listener) Handshake(ctx context.Context, conn net.Conn) (*proxy.Request, error) {
	h := l.current.Load()
	if h.accepted != nil {
		h.accepted.Inc()
	}
	return h.inbound.Handshake(ctx, conn)
}

// DialContext uses the handler current at dial time, so a connection whose handshake
// straddles a reload takes the new outbounds.
func (l *listener) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return l.current.Load().dialer.DialContext(ctx, network, address)
}

func (in *Instance) newListener(spec inboundSpec, opts proxy.ServerOptions) *listener {
	l := &listener{path: spec.path, address: spec.address}
	l.current.Store(spec.handler)
	// The server's tag only labels its log lines; a reload that retags an inbound at the
	// same address keeps the old label there, while routing uses the handler's tag.
	l.server = &proxy.Server{Tag: spec.handler.tag, Inbound: l, Dialer: l, Options: opts}
	return l
}

// Build constructs every outbound, the router and every inbound from cfg, which must
// have come from config.Load (secret files read). It opens no sockets; Start does.
func Build(cfg *config.Config, opts Options) (*Instance, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	in := &Instance{log: log, listen: opts.Listen, serverOpts: opts.Server, metrics: opts.Metrics}
	in.serverOpts.Logger = log
	if in.listen == nil {
		var lc net.ListenConfig
		in.listen = lc.Listen
	}
	gen, err := in.build(cfg)
	if err != nil {
		return nil, err
	}
	in.gen.Store(gen)
	for _, spec := range gen.inbounds {
		in.listeners = append(in.listeners, in.newListener(spec, gen.serverOpts))
	}
	in.retireCtx, in.cutRetired = context.WithCancel(context.Background())
	return in, nil
}

// build makes a generation from cfg. It opens no sockets.
func (in *Instance) build(cfg *config.Config) (*generation, error) {
	order, err := chain.Order(cfg.Outbounds)
	if err != nil {
		return nil, err
	}
	paths, err := chain.Describe(cfg.Outbounds)
	if err != nil {
		return nil, err
	}
	gen := &generation{
		outbounds:  make([]proxy.Outbound, len(cfg.Outbounds)),
		byTag:      make(map[string]proxy.Outbound),
		paths:      paths,
		serverOpts: withPolicy(in.serverOpts, cfg.Policy),
	}
	b := &builder{log: in.log, replay: newReplayFilters(), prevReplay: newReplayFilters()}
	if prev := in.gen.Load(); prev != nil {
		b.prevReplay = prev.replay
	}
	gen.replay = b.replay
	for _, i := range order {
		o := &cfg.Outbounds[i]
		path := fmt.Sprintf("outbounds[%d]", i)
		var parent proxy.Dialer
		if o.ProxySettings != nil {
			parent = gen.byTag[o.ProxySettings.Tag]
		} else {
			parent, err = directDialer(o.SendThrough, path)
			if err != nil {
				return nil, err
			}
		}
		build, ok := outboundBuilders[o.Protocol]
		if !ok {
			return nil, pathErrorf(path+".protocol", "protocol %q is not available in this build", o.Protocol)
		}
		ob, err := build(b, o, path, parent)
		if err != nil {
			return nil, err
		}
		if in.metrics != nil {
			// Wrapped before children are built, so a child's dials through this hop count.
			ob = metrics.Instrument(ob, in.metrics.Outbound(cmp.Or(o.Tag, path)))
		}
		gen.outbounds[i] = ob
		if o.Tag != "" {
			gen.byTag[o.Tag] = ob
		}
	}
	gen.router, err = router.New(cfg.Routing, gen.outbounds)
	if err != nil {
		return nil, err
	}
	for i := range cfg.Inbounds {
		ic := &cfg.Inbounds[i]
		path := fmt.Sprintf("inbounds[%d]", i)
		build, ok := inboundBuilders[ic.Protocol]
		if !ok {
			return nil, pathErrorf(path+".protocol", "protocol %q is not available in this build", ic.Protocol)
		}
		ib, err := build(b, ic, path)
		if err != nil {
			return nil, err
		}
		h := &handler{tag: ic.Tag, inbound: ib, dialer: inboundDialer{tag: ic.Tag, router: gen.router}}
		if in.metrics != nil {
			h.accepted = in.metrics.Inbound(cmp.Or(ic.Tag, path))
		}
		gen.inbounds = append(gen.inbounds, inboundSpec{
			path:    path,
			address: net.JoinHostPort(ic.Listen, strconv.Itoa(int(ic.Port))),
			handler: h,
		})
	}
	return gen, nil
}

// directDialer is what an outbound without proxySettings dials its server with.
func directDialer(sendThrough, path string) (proxy.Dialer, error) {
	d := &proxy.SocketDialer{}
	if sendThrough != "" {
		ip, err := netip.ParseAddr(sendThrough)
		if err != nil {
			return nil, pathErrorf(path+".sendThrough", "want an IP address, got %q", sendThrough)
		}
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))
	}
	return d, nil
}

// inboundDialer tells the router which inbound a connection came in on.
type inboundDialer struct {
	tag    string
	router *router.Router
}

func (d inboundDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return d.router.DialContext(router.WithInbound(ctx, d.tag), network, address)
}

// Errors of Start and Reload.
var (
	ErrStarted = errors.New("instance: already started")
	ErrStopped = errors.New("instance: shut down")
)

// Start listens on every inbound and serves until Shutdown. If any listener cannot be
// opened, those already opened are closed and the error names the inbound.
func (in *Instance) Start(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch {
	case in.stopped:
		return ErrStopped
	case in.started:
		return ErrStarted
	}
	for j, l := range in.listeners {
		ln, err := in.bind(ctx, l.address)
		if err != nil {
			for _, opened := range in.listeners[:j] {
				if opened.ln != nil {
					opened.ln.Close()
					opened.ln = nil
				}
			}
			return fmt.Errorf("instance: %s: %w", l.path, err)
		}
		l.ln = ln
	}
	in.started = true
	for _, l := range in.listeners {
		if l.ln != nil {
			in.serve(l)
		}
	}
	return nil
}

// bind opens address. An IPv6 address in a network namespace without IPv6 (the kernel
// has it disabled) is skipped with a warning, leaving a nil listener: there is no IPv6
// traffic there to serve, and the sidecar's IPv6 redirect inbound must not keep such a
// pod from starting.
func (in *Instance) bind(ctx context.Context, address string) (net.Listener, error) {
	ln, err := in.listen(ctx, "tcp", address)
	if err == nil {
		return ln, nil
	}
	host, _, _ := net.SplitHostPort(address)
	if ip, perr := netip.ParseAddr(host); perr == nil && ip.Is6() && !ip.Is4In6() &&
		(errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT)) {
		in.log.Warn("inbound not listening: this network namespace has no IPv6", "address", address, "err", err)
		return nil, nil
	}
	return nil, err
}

// serve runs l's accept loop; in.mu is held.
func (in *Instance) serve(l *listener) {
	tag := l.current.Load().tag
	in.log.Info("inbound listening", "inbound", tag, "address", l.ln.Addr().String())
	in.serving.Add(1)
	go func() {
		defer in.serving.Done()
		if err := l.server.Serve(l.ln); err != nil && !errors.Is(err, proxy.ErrServerClosed) {
			in.log.Error("inbound stopped", "inbound", tag, "err", err)
		}
	}()
}

// Reload builds cfg and makes it what new connections use. Established connections
// keep the outbounds they were dialed with until they end.
//
// An inbound whose listen address and port are unchanged keeps its socket, so no
// connection attempt is refused during the swap; only what runs for each new connection
// changes. An inbound at a new address is bound before anything is swapped, and one
// whose address is gone stops accepting while its connections drain. The replay filters
// of VMess and of each Shadowsocks method and key that cfg still has carry over, so a
// request accepted before the reload is refused after it. If cfg does not build or a new
// address cannot be bound, nothing changes and the error says why.
func (in *Instance) Reload(ctx context.Context, cfg *config.Config) error {
	in.reloading.Lock()
	defer in.reloading.Unlock()
	gen, err := in.build(cfg)
	if err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopped {
		return ErrStopped
	}
	if !in.started {
		in.gen.Store(gen)
		in.listeners = in.listeners[:0]
		for _, spec := range gen.inbounds {
			in.listeners = append(in.listeners, in.newListener(spec, gen.serverOpts))
		}
		return nil
	}

	byAddress := make(map[string][]*listener)
	for _, l := range in.listeners {
		byAddress[l.address] = append(byAddress[l.address], l)
	}
	next := make([]*listener, len(gen.inbounds))
	var opened []*listener
	for i, spec := range gen.inbounds {
		if kept := byAddress[spec.address]; len(kept) > 0 {
			next[i], byAddress[spec.address] = kept[0], kept[1:]
			continue
		}
		l := in.newListener(spec, gen.serverOpts)
		if l.ln, err = in.bind(ctx, spec.address); err != nil {
			for _, o := range opened {
				o.ln.Close()
			}
			return fmt.Errorf("instance: %s: %w", spec.path, err)
		}
		if l.ln != nil {
			opened = append(opened, l)
		}
		next[i] = l
	}

	in.gen.Store(gen)
	for i, l := range next {
		l.path = gen.inbounds[i].path
		l.current.Store(gen.inbounds[i].handler)
		l.server.SetOptions(gen.serverOpts)
	}
	for _, l := range opened {
		in.serve(l)
	}
	for _, gone := range byAddress {
		for _, l := range gone {
			in.retire(l)
		}
	}
	in.listeners = next
	return nil
}

// retire stops l accepting and lets its connections run until they end or Shutdown's
// drain does; in.mu is held.
func (in *Instance) retire(l *listener) {
	in.log.Info("inbound closed by reload; its connections drain", "inbound", l.current.Load().tag, "address", l.address)
	// Refuse new connections before Reload returns; only the drain runs on.
	l.server.StopAccepting()
	in.serving.Add(1)
	go func() {
		defer in.serving.Done()
		if err := l.server.Shutdown(in.retireCtx); err != nil {
			in.mu.Lock()
			in.retiredCut = true
			in.mu.Unlock()
		}
	}()
}

// Shutdown stops every inbound, lets open connections (including those of configs a
// reload replaced) drain until ctx is done, then cuts what remains. It returns ctx's
// error if it had to cut connections.
func (in *Instance) Shutdown(ctx context.Context) error {
	in.mu.Lock()
	in.stopped = true
	listeners := in.listeners
	in.mu.Unlock()
	stop := context.AfterFunc(ctx, in.cutRetired)
	defer stop()
	errs := make([]error, len(listeners), len(listeners)+1)
	var wg sync.WaitGroup
	for j, l := range listeners {
		wg.Go(func() { errs[j] = l.server.Shutdown(ctx) })
	}
	wg.Wait()
	in.serving.Wait()
	in.mu.Lock()
	if in.retiredCut && !slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
		errs = append(errs, ctx.Err())
	}
	in.mu.Unlock()
	return errors.Join(errs...)
}

// Outbound returns the current config's outbound tagged tag, or nil.
func (in *Instance) Outbound(tag string) proxy.Outbound { return in.gen.Load().byTag[tag] }

// Dialer is the current config's router: what inbounds dial through.
func (in *Instance) Dialer() proxy.Dialer { return in.gen.Load().router }

// Addr returns the address the inbound tagged tag listens on once started, or nil.
func (in *Instance) Addr(tag string) net.Addr {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, l := range in.listeners {
		if l.current.Load().tag == tag && l.ln != nil {
			return l.ln.Addr()
		}
	}
	return nil
}

// Describe returns each outbound's chain in the current config, one line per outbound,
// as chain.Describe.
func (in *Instance) Describe() []string { return in.gen.Load().paths }

func pathErrorf(path, format string, args ...any) error {
	return fmt.Errorf("instance: %s: %w", path, fmt.Errorf(format, args...))
}

func pathError(path string, err error) error {
	return fmt.Errorf("instance: %s: %w", path, err)
}

// withPolicy fills the limits base leaves zero from the policy's level 0, which V2Ray
// writes in seconds.
func withPolicy(base proxy.ServerOptions, p *config.PolicyConfig) proxy.ServerOptions {
	lp := p.Level0()
	set := func(field *time.Duration, seconds *uint32) {
		if seconds == nil || *field != 0 {
			return
		}
		*field = time.Duration(*seconds) * time.Second
		if *field == 0 {
			*field = time.Nanosecond // V2Ray's half-closed 0: close once the other side is done
		}
	}
	set(&base.HandshakeTimeout, lp.Handshake)
	set(&base.IdleTimeout, lp.ConnIdle)
	set(&base.UplinkOnly, lp.UplinkOnly)
	set(&base.DownlinkOnly, lp.DownlinkOnly)
	return base
}
