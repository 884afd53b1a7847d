// Package chain checks and orders the outbound graph that proxySettings draws: each
// outbound names at most one parent, the outbound it dials its own server through, so
// the graph is a forest of chains. It is pure (no protocols, no I/O) so that the
// operator's validating webhook can use it as is.
package chain

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/proxychain/proxychain/proxy/config"
)

// Error is a problem in the graph. Path is the JSON path of the offending field
// (outbounds[0].proxySettings.tag), or empty for a cycle, which Cycle then lists by tag
// with its first outbound repeated at the end.
type Error struct {
	Path  string
	Cycle []string
	Msg   string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return "chain: " + e.Msg
	}
	return "chain: " + e.Path + ": " + e.Msg
}

// Validate reports every problem in the graph: a proxySettings tag that is empty, names
// no outbound or names its own outbound; duplicate tags; cycles. Order succeeds exactly
// when Validate returns nothing.
func Validate(outbounds []config.OutboundConfig) []*Error {
	g, errs := build(outbounds)
	return append(errs, g.cycles()...)
}

// Order returns the indexes of outbounds with every parent before its children, so they
// can be constructed in that order; ties keep config order. The error joins Validate's
// problems, each an *Error.
func Order(outbounds []config.OutboundConfig) ([]int, error) {
	if errs := Validate(outbounds); len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	g, _ := build(outbounds)
	order := make([]int, 0, len(outbounds))
	placed := make([]bool, len(outbounds))
	for i := range outbounds {
		var pending []int
		for j := i; j >= 0 && !placed[j]; j = g.parent[j] {
			pending = append(pending, j)
		}
		for _, j := range slices.Backward(pending) {
			placed[j] = true
			order = append(order, j)
		}
	}
	return order, nil
}

// Path returns the hops of the outbound tagged tag, from the client outward: the first
// is the outbound that dials TCP itself, the last is tag's.
func Path(outbounds []config.OutboundConfig, tag string) ([]int, error) {
	for i, o := range outbounds {
		if o.Tag == tag {
			return Hops(outbounds, i)
		}
	}
	return nil, &Error{Msg: fmt.Sprintf("no outbound tagged %q", tag)}
}

// Hops is Path for the outbound at index i, which need not have a tag.
func Hops(outbounds []config.OutboundConfig, i int) ([]int, error) {
	if i < 0 || i >= len(outbounds) {
		return nil, &Error{Msg: fmt.Sprintf("no outbound at index %d", i)}
	}
	if errs := Validate(outbounds); len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	g, _ := build(outbounds)
	var hops []int
	for j := i; j >= 0; j = g.parent[j] {
		hops = append(hops, j)
	}
	slices.Reverse(hops)
	return hops, nil
}

// Name is how messages refer to an outbound: its tag, or its JSON path when it has none.
func Name(outbounds []config.OutboundConfig, i int) string {
	if outbounds[i].Tag != "" {
		return outbounds[i].Tag
	}
	return fmt.Sprintf("outbounds[%d]", i)
}

// Warnings reports what loads but does not do what it says: V2Ray ignores
// streamSettings on an outbound that has proxySettings without transportLayer (the parent
// carries its stream as plain TCP), and so does proxychain.
func Warnings(outbounds []config.OutboundConfig) []config.Warning {
	var warnings []config.Warning
	for i, o := range outbounds {
		if o.ProxySettings != nil && !o.ProxySettings.TransportLayer && len(o.StreamSettings) > 0 && string(o.StreamSettings) != "null" {
			warnings = append(warnings, config.Warning{
				Path:    fmt.Sprintf("outbounds[%d].streamSettings", i),
				Message: "ignored because the outbound has proxySettings: its parent carries it as plain TCP",
			})
		}
	}
	return warnings
}

type graph struct {
	outbounds []config.OutboundConfig
	parent    []int // index of each outbound's parent, -1 for none or a broken link
}

func build(outbounds []config.OutboundConfig) (graph, []*Error) {
	var errs []*Error
	byTag := make(map[string]int, len(outbounds))
	for i, o := range outbounds {
		if o.Tag == "" {
			continue
		}
		if j, dup := byTag[o.Tag]; dup {
			errs = append(errs, &Error{
				Path: fmt.Sprintf("outbounds[%d].tag", i),
				Msg:  fmt.Sprintf("duplicate tag %q (also outbounds[%d])", o.Tag, j),
			})
			continue
		}
		byTag[o.Tag] = i
	}
	g := graph{outbounds: outbounds, parent: make([]int, len(outbounds))}
	for i, o := range outbounds {
		g.parent[i] = -1
		if o.ProxySettings == nil {
			continue
		}
		path := fmt.Sprintf("outbounds[%d].proxySettings.tag", i)
		parent, ok := byTag[o.ProxySettings.Tag]
		switch {
		case o.ProxySettings.Tag == "":
			errs = append(errs, &Error{Path: path, Msg: "required"})
		case !ok:
			errs = append(errs, &Error{Path: path, Msg: fmt.Sprintf("no outbound tagged %q", o.ProxySettings.Tag)})
		case parent == i || o.ProxySettings.Tag == o.Tag:
			errs = append(errs, &Error{Path: path, Msg: fmt.Sprintf("outbound %q cannot be its own proxy", o.Tag)})
		default:
			g.parent[i] = parent
		}
	}
	return g, errs
}

// cycles finds each cycle once, named from its member that comes first in the config.
func (g graph) cycles() []*Error {
	var errs []*Error
	// state: 0 unvisited, 1 on the current walk, 2 done.
	state := make([]int, len(g.parent))
	for i := range g.parent {
		var walk []int
		j := i
		for j >= 0 && state[j] == 0 {
			state[j] = 1
			walk = append(walk, j)
			j = g.parent[j]
		}
		if j >= 0 && state[j] == 1 {
			loop := walk[slices.Index(walk, j):]
			start := slices.Index(loop, slices.Min(loop))
			loop = slices.Concat(loop[start:], loop[:start])
			names := make([]string, 0, len(loop)+1)
			for _, k := range loop {
				names = append(names, Name(g.outbounds, k))
			}
			names = append(names, names[0])
			errs = append(errs, &Error{
				Cycle: names,
				Msg:   "outbound cycle: " + strings.Join(names, " -> "),
			})
		}
		for _, k := range walk {
			state[k] = 2
		}
	}
	return errs
}

func joinErrors(errs []*Error) error {
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}
