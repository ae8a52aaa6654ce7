// Package metric scores model predictions against reference answers with the
// metrics of LongBench v1 (THUDM/LongBench metrics.py), ported so that the
// same prediction gets the same number as the Python code, plus the RULER
// "contains" metric, the Japanese metrics of ChouBun and namm's "first_number"
// (a label's number, for the locate task).
//
// Every metric takes one prediction and one reference answer and returns a
// score in [0, 1]; Score takes the maximum over several answers, as
// LongBench's scorer does.
package metric

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Func scores one prediction against one reference answer. allClasses is the
// label set of classification tasks (LongBench's all_classes) and is ignored
// by other metrics. The score lies in [0, 1].
type Func func(prediction, answer string, allClasses []string) float64

var registry = map[string]Func{
	"qa_f1":          QAF1,
	"qa_f1_zh":       QAF1Zh,
	"rouge":          RougeL,
	"rouge_zh":       RougeLZh,
	"classification": Classification,
	"retrieval":      Retrieval,
	"retrieval_zh":   RetrievalZh,
	"count":          Count,
	"first_number":   FirstNumber,
	"code_sim":       CodeSim,
	"exact_match":    ExactMatch,
	"contains":       Contains,
	"ja_f1":          QAF1Ja,
	"ja_rouge":       RougeLJa,
}

// Names lists the registered metric names in sorted order.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ErrUnknownMetric is returned (wrapped) by Lookup and Score for a name that
// is not registered.
var ErrUnknownMetric = errors.New("unknown metric")

// Lookup returns the metric registered under name.
func Lookup(name string) (Func, error) {
	f, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (valid: %s)", ErrUnknownMetric, name, strings.Join(Names(), ", "))
	}
	return f, nil
}

// Score scores prediction against every answer and returns the best score, as
// LongBench's scorer does (max over ground truths, starting from 0).
//
// The "contains" metric is the exception: as RULER's string_match_all it
// returns the fraction of all answers found in the prediction.
//
// An empty answer list is an error: a sample without a reference cannot be
// scored, and silently giving it 0 would bias a mean.
func Score(name, prediction string, answers []string, allClasses []string) (float64, error) {
	f, err := Lookup(name)
	if err != nil {
		return 0, err
	}
	if len(answers) == 0 {
		return 0, fmt.Errorf("metric %s: empty answer list", name)
	}
	if name == "contains" {
		hits := 0.0
		for _, a := range answers {
			hits += Contains(prediction, a, nil)
		}
		return hits / float64(len(answers)), nil
	}
	best := 0.0
	for _, a := range answers {
		if s := f(prediction, a, allClasses); s > best {
			best = s
		}
	}
	return best, nil
}

// firstLineDatasets are the LongBench datasets whose predictions are scored
// on their first line only (eval.py).
var firstLineDatasets = map[string]bool{"trec": true, "triviaqa": true, "samsum": true, "lsht": true}

// PostProcess applies LongBench's eval.py post-processing to a raw
// prediction: for trec, triviaqa, samsum and lsht only the first line is kept
// (Python: prediction.lstrip('\n').split('\n')[0]). Other datasets are
// returned unchanged.
func PostProcess(dataset, prediction string) string {
	if !firstLineDatasets[dataset] {
		return prediction
	}
	p := strings.TrimLeft(prediction, "\n")
	if i := strings.IndexByte(p, '\n'); i >= 0 {
		p = p[:i]
	}
	return p
}

var datasetMetric = map[string]string{
	"narrativeqa": "qa_f1", "qasper": "qa_f1", "multifieldqa_en": "qa_f1", "hotpotqa": "qa_f1",
	"2wikimqa": "qa_f1", "musique": "qa_f1", "triviaqa": "qa_f1",
	"multifieldqa_zh": "qa_f1_zh",
	"dureader":        "rouge_zh", "vcsum": "rouge_zh",
	"gov_report": "rouge", "qmsum": "rouge", "multi_news": "rouge", "samsum": "rouge",
	"trec": "classification", "lsht": "classification",
	"passage_retrieval_en": "retrieval",
	"passage_retrieval_zh": "retrieval_zh",
	"passage_count":        "count",
	"lcc":                  "code_sim", "repobench-p": "code_sim",
}

// DatasetMetric returns the metric name LongBench's dataset2metric assigns to
// a LongBench v1 dataset, and whether the dataset is known.
func DatasetMetric(dataset string) (string, bool) {
	m, ok := datasetMetric[dataset]
	return m, ok
}
