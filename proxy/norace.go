//go:build !race

package proxy

func raceBeforeWrite()               {}
func raceAfterWrite(p []byte, n int) {}
func raceAfterRead(p []byte, n int)  {}
