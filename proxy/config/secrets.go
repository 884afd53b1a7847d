package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ResolveFiles reads every secret file the config names (passwordFile, idFile, passFile),
// taking a relative name from dir, and keeps the trimmed contents in memory for the
// Resolved accessors. The config's fields, and so its JSON, are unchanged.
func (c *Config) ResolveFiles(dir string) error {
	var errs []error
	read := func(path, name string, dst *string) {
		if name == "" {
			return
		}
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		data, err := os.ReadFile(name)
		if err != nil {
			errs = append(errs, &PathError{Path: path, Err: err})
			return
		}
		data = bytes.TrimSpace(data)
		if len(data) == 0 {
			errs = append(errs, pathErrorf(path, "file %s is empty", name))
			return
		}
		*dst = string(data)
	}
	accounts := func(p string, accounts []Account) {
		for i := range accounts {
			a := &accounts[i]
			read(fmt.Sprintf("%s[%d].passFile", p, i), a.PassFile, &a.passFromFile)
		}
	}
	users := func(p string, users []VMessUser) {
		for i := range users {
			u := &users[i]
			read(fmt.Sprintf("%s[%d].idFile", p, i), u.IDFile, &u.idFromFile)
		}
	}
	for i := range c.Outbounds {
		p := fmt.Sprintf("outbounds[%d].settings", i)
		switch s := c.Outbounds[i].Settings.(type) {
		case *ShadowsocksOutboundSettings:
			for j := range s.Servers {
				srv := &s.Servers[j]
				read(fmt.Sprintf("%s.servers[%d].passwordFile", p, j), srv.PasswordFile, &srv.passwordFromFile)
			}
		case *VMessOutboundSettings:
			for j := range s.Vnext {
				users(fmt.Sprintf("%s.vnext[%d].users", p, j), s.Vnext[j].Users)
			}
		case *SocksOutboundSettings:
			for j := range s.Servers {
				accounts(fmt.Sprintf("%s.servers[%d].users", p, j), s.Servers[j].Users)
			}
		case *HTTPOutboundSettings:
			for j := range s.Servers {
				accounts(fmt.Sprintf("%s.servers[%d].users", p, j), s.Servers[j].Users)
			}
		}
	}
	for i := range c.Inbounds {
		p := fmt.Sprintf("inbounds[%d].settings", i)
		switch s := c.Inbounds[i].Settings.(type) {
		case *ShadowsocksInboundSettings:
			read(p+".passwordFile", s.PasswordFile, &s.passwordFromFile)
		case *VMessInboundSettings:
			users(p+".clients", s.Clients)
		case *SocksInboundSettings:
			accounts(p+".accounts", s.Accounts)
		case *HTTPInboundSettings:
			accounts(p+".accounts", s.Accounts)
		}
	}
	return errors.Join(errs...)
}

// ErrUnresolved is returned by the Resolved accessors when a secret names a file that
// has not been read (the config came from Parse, not Load).
var ErrUnresolved = errors.New("config: secret file has not been read (use Load or ResolveFiles)")

func resolved(value, file, fromFile string) (string, error) {
	switch {
	case file == "":
		return value, nil
	case fromFile == "":
		return "", fmt.Errorf("%w: %s", ErrUnresolved, file)
	}
	return fromFile, nil
}

// ResolvedPassword is Password, or the contents of PasswordFile.
func (s *ShadowsocksServer) ResolvedPassword() (string, error) {
	return resolved(s.Password, s.PasswordFile, s.passwordFromFile)
}

// ResolvedPassword is Password, or the contents of PasswordFile.
func (s *ShadowsocksInboundSettings) ResolvedPassword() (string, error) {
	return resolved(s.Password, s.PasswordFile, s.passwordFromFile)
}

// ResolvedID is ID, or the contents of IDFile.
func (u *VMessUser) ResolvedID() (string, error) {
	return resolved(u.ID, u.IDFile, u.idFromFile)
}

// ResolvedPass is Pass, or the contents of PassFile.
func (a *Account) ResolvedPass() (string, error) {
	return resolved(a.Pass, a.PassFile, a.passFromFile)
}
