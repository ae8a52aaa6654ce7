package schedtest

import (
	"testing"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/serve"
	"github.com/namm-dev/namm/tokenizer"
)

func load(t *testing.T) (*engine.Engine, *tokenizer.Tokenizer) {
	const dir = "../../testdata/models/tiny-llama"
	e, err := engine.Load(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return e, tok
}

func TestSlotPool(t *testing.T) {
	e, tok := load(t)
	Run(t, e, tok, func(slots, queue int) serve.Scheduler { return serve.NewSlotPool(e, tok, slots, queue) })
}

func TestBatchPool(t *testing.T) {
	e, tok := load(t)
	Run(t, e, tok, func(slots, queue int) serve.Scheduler { return serve.NewBatchPool(e, tok, slots, queue) })
}
