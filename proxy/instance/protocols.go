package instance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/blackhole"
	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/freedom"
	"github.com/proxychain/proxychain/proxy/socks"
	"github.com/proxychain/proxychain/proxy/vmess"
)

// builder carries what protocol constructors share.
type builder struct {
	log *slog.Logger
	// replay collects this build's replay filters, taking over those of prevReplay: the
	// generation being replaced (empty for the first build).
	replay, prevReplay *replayFilters
}

type (
	outboundBuilder func(b *builder, o *config.OutboundConfig, path string, parent proxy.Dialer) (proxy.Outbound, error)
	inboundBuilder  func(b *builder, in *config.InboundConfig, path string) (proxy.Inbound, error)
)

// The registries: one entry per protocol. A protocol whose wiring has its own file
// (shadowsocks.go, httpproxy.go, dokodemo.go) adds its entries from init there,
// so adding a protocol touches one file.
var (
	outboundBuilders = map[string]outboundBuilder{
		"freedom":   buildFreedom,
		"blackhole": buildBlackhole,
		"socks":     buildSocksOutbound,
		"vmess":     buildVMessOutbound,
	}
	inboundBuilders = map[string]inboundBuilder{
		"socks": buildSocksInbound,
		"vmess": buildVMessInbound,
	}
)

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

func buildFreedom(_ *builder, o *config.OutboundConfig, path string, parent proxy.Dialer) (proxy.Outbound, error) {
	s, _ := o.Settings.(*config.FreedomSettings)
	if s == nil {
		s = new(config.FreedomSettings)
	}
	f, err := freedom.New(o.Tag, freedom.Options{DomainStrategy: s.DomainStrategy, Redirect: s.Redirect, Dialer: parent})
	if err != nil {
		return nil, pathError(path+".settings", err)
	}
	return f, nil
}

func buildBlackhole(_ *builder, o *config.OutboundConfig, path string, _ proxy.Dialer) (proxy.Outbound, error) {
	s, _ := o.Settings.(*config.BlackholeSettings)
	response := ""
	if s != nil && s.Response != nil {
		response = s.Response.Type
	}
	bh, err := blackhole.New(o.Tag, response)
	if err != nil {
		return nil, pathError(path+".settings.response.type", err)
	}
	return bh, nil
}

func buildSocksOutbound(_ *builder, o *config.OutboundConfig, path string, parent proxy.Dialer) (proxy.Outbound, error) {
	servers := o.Settings.(*config.SocksOutboundSettings).Servers
	return proxyServers(o.Tag, servers, path, func(server, user, pass string) proxy.Outbound {
		return socks.NewClient(o.Tag, server, user, pass, parent)
	})
}

// proxyServers builds a SOCKS or HTTP proxy outbound: one client per server and user
// (or per server, without authentication, if it lists none), taken in turn.
func proxyServers(tag string, servers []config.ProxyServer, path string, newClient func(server, user, pass string) proxy.Outbound) (proxy.Outbound, error) {
	return eachServer(tag, len(servers), func(i int) (proxy.Outbound, error) {
		srv := servers[i]
		server := hostPort(srv.Address, srv.Port)
		if len(srv.Users) == 0 {
			return newClient(server, "", ""), nil
		}
		return eachUser(tag, len(srv.Users), func(j int) (proxy.Outbound, error) {
			pass, err := srv.Users[j].ResolvedPass()
			if err != nil {
				return nil, pathError(fmt.Sprintf("%s.settings.servers[%d].users[%d].passFile", path, i, j), err)
			}
			return newClient(server, srv.Users[j].User, pass), nil
		})
	})
}

// eachServer builds one client per server of an outbound with build, and spreads the
// outbound's connections over them in turn, as V2Ray's round-robin server picker does.
// A dial that cannot reach its server moves on to the next (see roundRobin).
func eachServer(tag string, n int, build func(i int) (proxy.Outbound, error)) (proxy.Outbound, error) {
	return inTurn(tag, n, true, build)
}

// eachUser builds one client per user of one server with build and takes them in turn.
// They share the server, so a dial that cannot reach it does not try the next user.
func eachUser(tag string, n int, build func(i int) (proxy.Outbound, error)) (proxy.Outbound, error) {
	return inTurn(tag, n, false, build)
}

func inTurn(tag string, n int, failover bool, build func(i int) (proxy.Outbound, error)) (proxy.Outbound, error) {
	if n == 0 {
		return nil, errors.New("no server to dial") // config.Validate refuses this first
	}
	clients := make([]proxy.Outbound, n)
	for i := range clients {
		c, err := build(i)
		if err != nil {
			return nil, err
		}
		clients[i] = c
	}
	if n == 1 {
		return clients[0], nil
	}
	return &roundRobin{tag: tag, clients: clients, failover: failover}, nil
}

// roundRobin dials through its clients in turn, one per connection.
//
// With failover, a dial that could not reach its client's server moves on to the next
// client, as V2Ray's outbounds retry the server pick and the dial, until each has been
// tried or ctx ends. Each attempt has its share of the time left (proxy.DialInTurn), and
// one that used it all up moves on too, reached or not, so a server that never answers
// leaves time for the rest. A dial that reached its server and was refused (a SOCKS or
// HTTP refusal, failed authentication, a handshake cut off) does not move on, as V2Ray's
// retry covers only the dial: the refusal is about the destination or our credentials,
// which the next server would most likely refuse too, after dialing the destination
// once more.
type roundRobin struct {
	tag      string
	clients  []proxy.Outbound
	next     atomic.Uint64
	failover bool
}

func (r *roundRobin) Tag() string { return r.tag }

func (r *roundRobin) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	n := len(r.clients)
	first := int((r.next.Add(1) - 1) % uint64(n))
	if !r.failover {
		return r.clients[first].DialContext(ctx, network, address)
	}
	return proxy.DialInTurn(ctx, n, func(ctx context.Context, i int) (net.Conn, error) {
		return r.clients[(first+i)%n].DialContext(ctx, network, address)
	}, func(err error, outOfTime bool) bool {
		var he *proxy.HopError
		return outOfTime || errors.As(err, &he) && he.Dial
	})
}

// accounts turns inbound accounts into the user->password map the servers take.
func accounts(list []config.Account, path string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(list))
	for i := range list {
		pass, err := list[i].ResolvedPass()
		if err != nil {
			return nil, pathError(path+"["+strconv.Itoa(i)+"].passFile", err)
		}
		m[list[i].User] = pass
	}
	return m, nil
}

func buildSocksInbound(b *builder, in *config.InboundConfig, path string) (proxy.Inbound, error) {
	s := in.Settings.(*config.SocksInboundSettings)
	opts := socks.ServerOptions{Logger: b.log}
	if s.Auth == "password" {
		m, err := accounts(s.Accounts, path+".settings.accounts")
		if err != nil {
			return nil, err
		}
		opts.Accounts = m
	}
	return socks.NewServer(opts), nil
}

func vmessUser(u *config.VMessUser, path string) (vmess.User, error) {
	idField := path + ".id"
	if u.IDFile != "" {
		idField = path + ".idFile"
	}
	id, err := u.ResolvedID()
	if err != nil {
		return vmess.User{}, pathError(idField, err)
	}
	uuid, err := vmess.ParseUUID(id)
	if err != nil {
		return vmess.User{}, pathError(idField, err)
	}
	return vmess.User{ID: uuid, AlterID: u.AlterID, Email: u.Email}, nil
}

// buildVMessOutbound spreads connections over the vnext servers in turn, and over each
// server's users in turn, as proxyServers does.
func buildVMessOutbound(b *builder, o *config.OutboundConfig, path string, parent proxy.Dialer) (proxy.Outbound, error) {
	vnext := o.Settings.(*config.VMessOutboundSettings).Vnext
	warned := false
	return eachServer(o.Tag, len(vnext), func(i int) (proxy.Outbound, error) {
		srv := &vnext[i]
		return eachUser(o.Tag, len(srv.Users), func(j int) (proxy.Outbound, error) {
			userPath := fmt.Sprintf("%s.settings.vnext[%d].users[%d]", path, i, j)
			cu := &srv.Users[j]
			user, err := vmessUser(cu, userPath)
			if err != nil {
				return nil, err
			}
			c, err := vmess.NewClient(o.Tag, hostPort(srv.Address, srv.Port), user, cu.Security, parent)
			if err != nil {
				return nil, pathError(userPath, err)
			}
			if cu.AlterID > 0 && !warned {
				warned = true
				b.log.Warn("insecure VMess: alterId > 0 selects the legacy MD5 header, which has no integrity and which probes can identify; use alterId 0",
					"outbound", o.Tag, "path", userPath+".alterId", "alterId", cu.AlterID)
			}
			return c, nil
		})
	})
}

func buildVMessInbound(b *builder, in *config.InboundConfig, path string) (proxy.Inbound, error) {
	s := in.Settings.(*config.VMessInboundSettings)
	users := make([]vmess.User, len(s.Clients))
	legacy := false
	for i := range s.Clients {
		u, err := vmessUser(&s.Clients[i], path+".settings.clients["+strconv.Itoa(i)+"]")
		if err != nil {
			return nil, err
		}
		users[i] = u
		legacy = legacy || u.AlterID > 0
	}
	// V2Ray's name reads backwards: legacy headers are allowed only when the config
	// explicitly says disableInsecureEncryption: false.
	allowLegacy := s.DisableInsecureEncryption != nil && !*s.DisableInsecureEncryption
	if legacy && allowLegacy {
		b.log.Warn("insecure VMess inbound: legacy (alterId > 0) headers are accepted",
			"inbound", in.Tag, "path", path+".settings.disableInsecureEncryption")
	}
	srv, err := vmess.NewServer(users, vmess.ServerOptions{AllowLegacy: allowLegacy, Logger: b.log, Replay: b.vmessReplayFilter()})
	if err != nil {
		return nil, pathError(path+".settings", err)
	}
	return srv, nil
}
