package render

import (
	"errors"
	"fmt"

	"github.com/proxychain/proxychain/api/v1alpha1"
	"github.com/proxychain/proxychain/proxy/chain"
	"github.com/proxychain/proxychain/proxy/config"
)

// CheckChain checks spec's outbound graph as the data plane will, with package chain:
// every proxySettings tag names another outbound, and there is no cycle. The error is a
// *ChainError listing every problem.
func CheckChain(spec *v1alpha1.ProxyChainSpec) error {
	_, err := chainsOf(Topology(spec))
	return err
}

// chainsOf checks the graph and returns each outbound's chain, in spec order (the order
// of outbounds).
func chainsOf(outbounds []config.OutboundConfig) ([]Chain, error) {
	if problems := chain.Validate(outbounds); len(problems) > 0 {
		e := &ChainError{}
		for _, p := range problems {
			e.Problems = append(e.Problems, problemOf(outbounds, p))
		}
		return nil, e
	}
	chains := make([]Chain, 0, len(outbounds))
	for i, o := range outbounds {
		hops, err := chain.Hops(outbounds, i)
		if err != nil { // Validate passed, so Hops cannot fail; keep the error anyway.
			return nil, &ChainError{Problems: []Problem{{Field: "spec.outbounds", Message: err.Error()}}}
		}
		c := Chain{Tag: o.Tag}
		for _, h := range hops {
			c.Path = append(c.Path, outbounds[h].Tag)
		}
		chains = append(chains, c)
	}
	return chains, nil
}

// problemOf moves a chain.Error from the data plane's JSON paths to the ProxyChain's.
func problemOf(outbounds []config.OutboundConfig, e *chain.Error) Problem {
	if e.Path == "" {
		return Problem{Field: "spec.outbounds", Message: e.Msg, Cycle: e.Cycle}
	}
	p := Problem{Field: "spec." + e.Path, Message: e.Msg}
	var i int
	if _, err := fmt.Sscanf(e.Path, "outbounds[%d].proxySettings.tag", &i); err == nil &&
		i >= 0 && i < len(outbounds) && outbounds[i].ProxySettings != nil {
		p.Value = outbounds[i].ProxySettings.Tag
	}
	return p
}

// AsChainError returns err's *ChainError, if it has one.
func AsChainError(err error) (*ChainError, bool) {
	var ce *ChainError
	ok := errors.As(err, &ce)
	return ce, ok
}
