package eval

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpenJournal: any journal content is read or refused with an error,
// never a panic; what it reads survives an append and a second read.
func FuzzOpenJournal(f *testing.F) {
	f.Add([]byte(`{"id":"1","task":"t","policy":"full","budget":"","score":1}` + "\n"))
	f.Add([]byte(`{"id":"1"}` + "\n" + `{"id":"2","ta`))
	f.Add([]byte("\n\n garbage"))
	f.Add([]byte(`{"cache_mean_per_layer":[1,2,"x"]}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), JournalFile)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		j, done, err := OpenJournal(p)
		if err != nil {
			return
		}
		if err := j.Append(SampleResult{ID: "new", Task: "t", Policy: "full"}); err != nil {
			t.Fatal(err)
		}
		j.Close()
		j, again, err := OpenJournal(p)
		if err != nil {
			t.Fatalf("journal unreadable after an append: %v", err)
		}
		j.Close()
		if len(again) != len(done)+1 || again[len(again)-1].ID != "new" {
			t.Fatalf("read %d then %d results", len(done), len(again))
		}
	})
}

// FuzzSpecs: budget lists, policy lists and file specs never panic, and
// accepted budgets are valid.
func FuzzSpecs(f *testing.F) {
	for _, s := range []string{"256,0.25", "r0.5", "h2o:recent=8,streaming", "a:b:template=x:metric=y", ":", "jsonl::max_new=3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if bs, err := ParseBudgets(s); err == nil {
			for _, b := range bs {
				if b.IsZero() || b.Validate() != nil {
					t.Fatalf("ParseBudgets(%q) accepted %+v", s, b)
				}
			}
		}
		_ = SplitPolicies(s)
		if path, opts, err := splitFileSpec("jsonl", s); err == nil && (path == "" || len(opts) > len(fileOptions)) {
			t.Fatalf("splitFileSpec(%q) = %q %v", s, path, opts)
		}
	})
}
