package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"hash"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/proxychain/proxychain/proxy/chain"
	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/instance"
	"github.com/proxychain/proxychain/proxy/metrics"
)

// fingerprint hashes the contents of the config files and of every secret file they
// name (passwordFile, idFile, passFile), as read now.
//
// Kubelet updates a ConfigMap or Secret volume by writing a new directory and swapping
// the ..data symlink to it, so a file's path never changes while its contents do, and
// an inotify watch on the file would follow the old inode. Reading through the path
// every few seconds sees each swap, costs a few small reads, and needs no dependency.
func fingerprint(paths []string) [32]byte {
	h := sha256.New()
	for _, p := range paths {
		data, err := os.ReadFile(p)
		hashEntry(h, p, data, err)
		for _, name := range secretFileNames(data) {
			if !filepath.IsAbs(name) {
				name = filepath.Join(filepath.Dir(p), name)
			}
			secret, err := os.ReadFile(name)
			hashEntry(h, name, secret, err)
		}
	}
	return [32]byte(h.Sum(nil))
}

// hashEntry writes a file's name and contents, or its read error, length-prefixed so
// that no two different sets of files hash alike.
func hashEntry(h hash.Hash, name string, data []byte, err error) {
	if err != nil {
		data = []byte("error: " + err.Error())
	}
	for _, field := range [][]byte{[]byte(name), data} {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(field))))
		h.Write(field)
	}
}

// secretFileNames lists the string values of keys ending in "File" anywhere in a config
// file. A file that does not parse names none; loading it reports why.
func secretFileNames(data []byte) []string {
	var doc any
	if json.Unmarshal(config.StripComments(data), &doc) != nil {
		return nil
	}
	var names []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if s, ok := child.(string); ok && strings.HasSuffix(k, "File") && s != "" {
					names = append(names, s)
				}
				walk(child)
			}
		case []any:
			for _, child := range v {
				walk(child)
			}
		}
	}
	walk(doc)
	slices.Sort(names)
	return slices.Compact(names)
}

// reloader applies the config files to a running instance whenever they change.
type reloader struct {
	paths    []string
	instance *instance.Instance
	metrics  *metrics.Proxy
	log      *slog.Logger
	last     [32]byte // fingerprint of the files last tried, applied or not
}

// watch polls every interval until ctx ends. A config that fails to load or build is
// refused once per change: logged, counted, and the running config stays.
func (r *reloader) watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fp := fingerprint(r.paths)
		if fp == r.last {
			continue
		}
		r.last = fp
		r.reload(ctx)
	}
}

func (r *reloader) reload(ctx context.Context) {
	cfg, warnings, err := config.Load(r.paths...)
	for _, w := range warnings {
		r.log.Warn("config", "warning", w.String())
	}
	if err == nil {
		for _, w := range chain.Warnings(cfg.Outbounds) {
			r.log.Warn("config", "warning", w.String())
		}
		err = r.instance.Reload(ctx, cfg)
	}
	if err != nil {
		r.metrics.ReloadFailures.Inc()
		r.metrics.LastReloadSuccessful.Set(0)
		r.log.Error("config change refused; the running config stays", "err", err)
		return
	}
	r.metrics.Reloads.Inc()
	r.metrics.LastReloadSuccessful.Set(1)
	r.log.Info("config reloaded: new connections use it, open ones finish on the old")
	for _, line := range r.instance.Describe() {
		r.log.Info("outbound", "chain", line)
	}
}
