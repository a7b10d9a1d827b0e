package queue

import (
	"testing"

	"github.com/switchyard-dev/switchyard/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }
