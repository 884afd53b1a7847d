package harness

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
)

// TestTimeoutReader: every stutter delivers the input intact through the retrying
// readers, with the timeouts it promises, each a deadline error.
func TestTimeoutReader(t *testing.T) {
	in := bytes.Repeat([]byte("0123456789abcdef"), 3000)
	for _, s := range Stutters {
		src := NewTimeoutReader(bytes.NewReader(in), s)
		got, err := ReadAllRetrying(src, src, 1)
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("%s: read %d bytes, %v; want %d", s.Name, len(got), err, len(in))
		}
		if src.Timeouts() == 0 {
			t.Errorf("%s: no timeouts", s.Name)
		}
		if s.TimeoutOdds == 1 && s.MaxPiece == 1 && src.Timeouts() < len(in) {
			t.Errorf("%s: %d timeouts for %d one-byte pieces", s.Name, src.Timeouts(), len(in))
		}
		src = NewTimeoutReader(bytes.NewReader(in), s)
		got, err = WriteToRetrying(bufio.NewReader(src), src)
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("%s: WriteTo gave %d bytes, %v; want %d", s.Name, len(got), err, len(in))
		}
	}
	_, err := NewTimeoutReader(strings.NewReader("x"), Stutters[0]).Read(make([]byte, 8))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("first read: %v, want a deadline timeout", err)
	}
}

// stickyReader keeps the first error it sees, as a decoder that cannot resume does.
type stickyReader struct {
	r   io.Reader
	err error
}

func (s *stickyReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	s.err = err
	return n, err
}

// TestRetryingCatchesStickyTimeouts: a reader that replays a timeout is reported, not
// retried forever.
func TestRetryingCatchesStickyTimeouts(t *testing.T) {
	src := NewTimeoutReader(strings.NewReader("payload"), Stutters[0])
	if _, err := ReadAllRetrying(&stickyReader{r: src}, src, 1); !IsTimeout(err) || !strings.Contains(err.Error(), "sticky") {
		t.Errorf("Read: err = %v, want a sticky timeout reported", err)
	}
	src = NewTimeoutReader(strings.NewReader("payload"), Stutters[0])
	if _, err := WriteToRetrying(bufio.NewReader(&stickyReader{r: src}), src); !IsTimeout(err) || !strings.Contains(err.Error(), "sticky") {
		t.Errorf("WriteTo: err = %v, want a sticky timeout reported", err)
	}
}
