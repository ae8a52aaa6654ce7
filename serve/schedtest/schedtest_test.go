package schedtest

import (
	"testing"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/internal/testmodel"
	"github.com/namm-dev/namm/serve"
	"github.com/namm-dev/namm/tokenizer"
)

func load(t *testing.T) (*engine.Engine, *tokenizer.Tokenizer) {
	return testmodel.Load(t, "tiny-llama")
}

func TestSlotPool(t *testing.T) {
	e, tok := load(t)
	Run(t, e, tok, func(slots, queue int) serve.Scheduler { return serve.NewSlotPool(e, tok, slots, queue) })
}

func TestBatchPool(t *testing.T) {
	e, tok := load(t)
	Run(t, e, tok, func(slots, queue int) serve.Scheduler { return serve.NewBatchPool(e, tok, slots, queue) })
}
