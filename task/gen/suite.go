package gen

import "sort"

// suites are named lists of specs; the lengths are defaults that callers may override.
var suites = map[string][]string{
	// quick: short tasks for the README demo and smoke runs on small models.
	"quick": {
		"niah_single:len=1024:n=5:haystack=noise",
		"niah_single:len=1024:n=5",
		"vartrack:len=1024:n=5",
		"passage_count:len=1024:n=5",
	},
	// core: one of each task.
	"core": {
		"niah_single:len=4096:n=20",
		"niah_multikey:len=4096:n=20",
		"niah_multivalue:len=4096:n=20",
		"niah_multiquery:len=4096:n=20",
		"vartrack:len=4096:n=20",
		"cwe:len=4096:n=20",
		"fwe:len=4096:n=20",
		"qa:len=4096:n=20",
		"passage_retrieval:len=4096:n=20",
		"passage_count:len=4096:n=20",
	},
	// retrieval: finding one or a few facts.
	"retrieval": {
		"niah_single:len=4096:n=20",
		"niah_multikey:len=4096:n=20",
		"niah_multivalue:len=4096:n=20",
		"niah_multiquery:len=4096:n=20",
		"qa:len=4096:n=20",
		"passage_retrieval:len=4096:n=20",
	},
	// aggregation: counting and tracking over the whole context.
	"aggregation": {
		"vartrack:len=4096:n=20",
		"cwe:len=4096:n=20",
		"fwe:len=4096:n=20",
		"passage_count:len=4096:n=20",
	},
	// ruler: RULER's 13 synthetic configurations (scripts/synthetic.yaml), qa_1 and qa_2
	// both replaced by our synthetic qa.
	"ruler": {
		"niah_single:len=4096:n=20:haystack=noise:needle=number:key=word",
		"niah_single:len=4096:n=20:haystack=essay:needle=number:key=word",
		"niah_single:len=4096:n=20:haystack=essay:needle=uuid:key=word",
		"niah_multikey:len=4096:n=20:haystack=essay:keys=4",
		"niah_multikey:len=4096:n=20:haystack=needle:keys=1",
		"niah_multikey:len=4096:n=20:haystack=needle:keys=1:key=uuid:needle=uuid",
		"niah_multivalue:len=4096:n=20:values=4",
		"niah_multiquery:len=4096:n=20:queries=4",
		"vartrack:len=4096:n=20:chains=1:hops=4",
		"cwe:len=4096:n=20",
		"fwe:len=4096:n=20:alpha=2.0",
		"qa:len=4096:n=20",
		"qa:len=4096:n=20:distractors=16",
	},
	// longbench: the two synthetic LongBench tasks at LongBench's typical length.
	"longbench": {
		"passage_retrieval:len=8192:n=20",
		"passage_count:len=8192:n=20",
	},
}

// Suite returns the specs of a built-in suite: "quick", "core", "retrieval", "aggregation",
// "ruler" or "longbench" (see SuiteNames).
func Suite(name string) ([]Spec, bool) {
	list, ok := suites[name]
	if !ok {
		return nil, false
	}
	specs := make([]Spec, len(list))
	for i, s := range list {
		spec, err := ParseSpec(s)
		if err != nil {
			panic("gen: built-in suite " + name + ": " + err.Error()) // a bug in this file
		}
		specs[i] = spec
	}
	return specs, true
}

// SuiteNames lists the built-in suites, sorted.
func SuiteNames() []string {
	names := make([]string, 0, len(suites))
	for n := range suites {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
