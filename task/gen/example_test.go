package gen_test

import (
	"fmt"

	"github.com/namm-dev/namm/task/gen"
)

func ExampleParseSpec() {
	spec, err := gen.ParseSpec("niah_multikey:len=8192:n=50:seed=1:haystack=needle")
	if err != nil {
		panic(err)
	}
	fmt.Println(spec)
	_, err = gen.ParseSpec("niah_multikey:colour=red")
	fmt.Println(err)
	// Output:
	// niah_multikey:len=8192:n=50:seed=1:haystack=needle
	// task spec "niah_multikey:colour=red": task niah_multikey has no option "colour" (valid: len, n, seed, haystack, needle, key, keys, split, texts)
}

func ExampleTasks() {
	for _, t := range gen.Tasks() {
		fmt.Println(t.Name, t.Metric, t.MaxNewTokens)
	}
	// Output:
	// cwe contains 120
	// facts contains 32
	// fwe contains 50
	// locate first_number 16
	// niah_multikey contains 128
	// niah_multiquery contains 128
	// niah_multivalue contains 128
	// niah_single contains 128
	// passage_count count 32
	// passage_retrieval retrieval 32
	// qa qa_f1 32
	// records contains 32
	// vartrack contains 30
}
