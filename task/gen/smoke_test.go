package gen

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestSmoke(t *testing.T) {
	specs := strings.Fields(os.Getenv("SMOKE"))
	if len(specs) == 0 {
		t.Skip("set SMOKE to spec strings")
	}
	for _, s := range specs {
		spec, err := ParseSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		ss, err := Generate(spec, wordCounter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range ss {
			p := x.Prompt
			if len(p) > 1500 {
				p = p[:700] + " ..... " + p[len(p)-700:]
			}
			fmt.Printf("== %s len=%d answers=%v depth=%.2f\n%s\n", x.ID, x.Length, x.Answers, x.Depth, p)
		}
	}
}
