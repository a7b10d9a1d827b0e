package webhook

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails a run that leaves goroutines behind: the test servers and
// clients must all be closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
