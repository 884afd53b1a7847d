package harness

import "io"

// LayerReader stands for a protocol layer that another reads through: it has its input
// in batches, as each of its own reads from a socket brings them, and a Read returns
// from the current batch only, as much as fits. The next batch begins once this one is
// delivered. A reader above that takes all of a batch in one Read makes one Read per
// batch; one with too little room leaves a remainder, which comes up by itself.
type LayerReader struct {
	data    []byte
	batch   int
	left    int // of the current batch
	Batches int // begun so far
}

// NewLayerReader hands out data in batches of batch bytes.
func NewLayerReader(data []byte, batch int) *LayerReader {
	return &LayerReader{data: data, batch: batch}
}

func (r *LayerReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if r.left == 0 {
		r.left = min(r.batch, len(r.data))
		r.Batches++
	}
	n := copy(p, r.data[:r.left])
	r.data = r.data[n:]
	r.left -= n
	return n, nil
}
