package persistence_test

import (
	"testing"

	"github.com/commongrounds/commongrounds/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
