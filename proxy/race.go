//go:build race

package proxy

import (
	"runtime"
	"unsafe"
)

// With the race detector on, a Socket's raw calls tell it what read(2) and write(2)
// do, as package syscall's do: a read writes the bytes it returns and happens after
// every earlier write to any descriptor, a write reads the bytes it takes.

func raceBeforeWrite() { runtime.RaceReleaseMerge(unsafe.Pointer(&ioSync)) }

func raceAfterWrite(p []byte, n int) {
	if n > 0 {
		runtime.RaceReadRange(unsafe.Pointer(&p[0]), n)
	}
}

func raceAfterRead(p []byte, n int) {
	if n > 0 {
		runtime.RaceWriteRange(unsafe.Pointer(&p[0]), n)
	}
	runtime.RaceAcquire(unsafe.Pointer(&ioSync))
}

var ioSync int64
