package config

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Port is a TCP port, written in V2Ray configs as a number or a numeric string.
type Port int

// UnmarshalJSON accepts 1080 and "1080".
func (p *Port) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*p = Port(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a port number, got %s", b)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("want a single port number, got %q (port ranges are not supported)", s)
	}
	*p = Port(n)
	return nil
}
