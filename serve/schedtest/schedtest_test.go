package schedtest

import (
	"testing"

	"github.com/namm-dev/namm/engine"
	"github.com/namm-dev/namm/serve"
	"github.com/namm-dev/namm/tokenizer"
)

func TestSlotPool(t *testing.T) {
	const dir = "../../testdata/models/tiny-llama"
	e, err := engine.Load(dir, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	Run(t, e, tok, func(slots, queue int) serve.Scheduler { return serve.NewSlotPool(e, tok, slots, queue) })
}
