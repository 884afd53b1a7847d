package router

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test in this package ends with no goroutine left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
