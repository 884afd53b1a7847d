package harness

import (
	"fmt"
	"io"
	"net"
	"time"
)

// HeldOpen reads and discards from c until the absolute time until, and reports how
// many bytes it read and whether c was still open then: a nil error if the read deadline
// fired, or else how c ended before it (io.EOF for a clean close). It clears the read
// deadline after.
//
// It lets a test assert that a peer does not close before its own timeout, as an outcome
// (timed out or closed) rather than a bound on elapsed time. For that to be sound, take
// until from a moment before the peer could start its timer (before dialing it, for a
// handshake deadline counted from accept; before the last byte it relays, for an idle
// timeout), and less a margin: a correct peer then cannot close before until however
// slow the machine is, and the margin covers only the order in which this process runs
// two due timers, the peer's and the read deadline.
func HeldOpen(c net.Conn, until time.Time) (int64, error) {
	if err := c.SetReadDeadline(until); err != nil {
		return 0, err
	}
	defer c.SetReadDeadline(time.Time{})
	n, err := io.Copy(io.Discard, c)
	if err == nil {
		err = io.EOF
	}
	if IsTimeout(err) {
		return n, nil
	}
	return n, fmt.Errorf("closed with %d bytes read, %v before it may: %w", n, time.Until(until).Round(time.Millisecond), err)
}
