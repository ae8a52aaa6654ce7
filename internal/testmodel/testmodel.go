// Package testmodel loads the repository's tiny fixture models (testdata/models) for the
// tests of packages that sit above the engine, so that each does not carry its own copy.
package testmodel

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/tokenizer"
)

// Dir is the directory of the named fixture model (e.g. "tiny-llama"), found from this
// source file, so it holds from any package's test directory.
func Dir(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "models", name)
}

// Load returns the named fixture model on the pure-Go backend and its tokenizer, failing
// the test when either does not load.
func Load(t testing.TB, name string) (*engine.Engine, *tokenizer.Tokenizer) {
	t.Helper()
	e, err := engine.Load(Dir(name), engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadDir(Dir(name))
	if err != nil {
		t.Fatal(err)
	}
	return e, tok
}
