package match

import "testing"

func TestParsePorts(t *testing.T) {
	ranges, err := ParsePorts("80, 443,1000-2000")
	if err != nil {
		t.Fatal(err)
	}
	want := []PortRange{{80, 80}, {443, 443}, {1000, 2000}}
	if len(ranges) != len(want) {
		t.Fatalf("got %v", ranges)
	}
	for i := range want {
		if ranges[i] != want[i] {
			t.Errorf("range %d = %v, want %v", i, ranges[i], want[i])
		}
	}
	for _, bad := range []string{"", "x", "70000", "5-0", "1-", "-5", "1,,2"} {
		if _, err := ParsePorts(bad); err == nil {
			t.Errorf("ParsePorts(%q) succeeded", bad)
		}
	}
}

func TestMatchesTCP(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want bool
	}{
		{nil, true},
		{[]string{"tcp"}, true},
		{[]string{"UDP", "tcp"}, true},
		{[]string{"udp"}, false},
	} {
		if got, err := MatchesTCP(tt.in); err != nil || got != tt.want {
			t.Errorf("MatchesTCP(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if _, err := MatchesTCP([]string{"quic"}); err == nil {
		t.Error(`MatchesTCP(["quic"]) succeeded`)
	}
}
