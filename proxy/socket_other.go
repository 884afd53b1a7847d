//go:build !unix

package proxy

// Elsewhere a Socket reads and writes as its TCPConn does.

func (s *Socket) bind() {}

func (s *Socket) Read(p []byte) (int, error)  { return s.TCPConn.Read(p) }
func (s *Socket) Write(p []byte) (int, error) { return s.TCPConn.Write(p) }
