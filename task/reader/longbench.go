package reader

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"github.com/namm-dev/namm/task/metric"
)

// longBenchPromptsJSON is LongBench v1's config/dataset2prompt.json,
// verbatim (typos such as "asconcisely" included): prompts must match the
// published ones for scores to be comparable.
//
//go:embed longbench_prompts.json
var longBenchPromptsJSON []byte

var longBenchPrompts = func() map[string]string {
	m := map[string]string{}
	if err := json.Unmarshal(longBenchPromptsJSON, &m); err != nil {
		panic("reader: embedded LongBench prompts: " + err.Error())
	}
	return m
}()

// longBenchMaxNew is LongBench's config/dataset2maxlen.json.
var longBenchMaxNew = map[string]int{
	"narrativeqa": 128, "qasper": 128, "multifieldqa_en": 64, "multifieldqa_zh": 64,
	"hotpotqa": 32, "2wikimqa": 32, "musique": 32, "dureader": 128,
	"gov_report": 512, "qmsum": 512, "multi_news": 512, "vcsum": 512,
	"trec": 64, "triviaqa": 32, "samsum": 128, "lsht": 64,
	"passage_count": 32, "passage_retrieval_en": 32, "passage_retrieval_zh": 32,
	"lcc": 64, "repobench-p": 64,
}

// genericTemplate is used for datasets without a template of their own.
const genericTemplate = "{context}\n\nQuestion: {input}\nAnswer:"

// LongBenchPrompt returns LongBench's prompt template of a dataset (with
// {context} and {input} placeholders) and whether it has one.
func LongBenchPrompt(dataset string) (string, bool) {
	t, ok := longBenchPrompts[dataset]
	return t, ok
}

// ReadLongBench reads a LongBench v1 JSONL file (fields input, context,
// answers, all_classes, length, dataset, language, _id). The prompt is the
// dataset's LongBench template filled with context and input; the metric and
// generation budget are LongBench's. A dataset without a template (or a line
// without a dataset field, whose dataset is then the file name) gets
// "{context}\n\nQuestion: {input}\nAnswer:", opts.Metric (default qa_f1)
// and opts.MaxNewTokens (default 64).
func ReadLongBench(path string, opts Options) ([]Sample, error) {
	return readJSONL(path, opts, func(o object, line int) (Sample, error) {
		return parseLongBench(o, line, taskFromPath(path), opts)
	})
}

func parseLongBench(o object, line int, defaultTask string, opts Options) (Sample, error) {
	input, err := o.str("input")
	if err != nil {
		return Sample{}, err
	}
	context, err := o.str("context")
	if err != nil {
		return Sample{}, err
	}
	answers, err := o.strList("answers", false)
	if err != nil {
		return Sample{}, err
	}
	classes, err := o.optStrList("all_classes")
	if err != nil {
		return Sample{}, err
	}
	length, err := o.optInt("length")
	if err != nil {
		return Sample{}, err
	}
	dataset, err := o.optStr("dataset")
	if err != nil {
		return Sample{}, err
	}
	if dataset == "" {
		dataset = defaultTask
	}
	language, err := o.optStr("language")
	if err != nil {
		return Sample{}, err
	}
	id, err := o.idField("_id")
	if err != nil {
		return Sample{}, err
	}
	if id == "" {
		id = fmt.Sprintf("%s-%d", dataset, line)
	}
	tmpl, ok := longBenchPrompts[dataset]
	metricName, maxNew := opts.metric("qa_f1"), opts.maxNew(64)
	if ok {
		metricName, _ = metric.DatasetMetric(dataset)
		maxNew = longBenchMaxNew[dataset]
	} else {
		tmpl = genericTemplate
	}
	prompt, err := format(tmpl, map[string]string{"context": context, "input": input})
	if err != nil {
		return Sample{}, badLine("%v", err)
	}
	return Sample{ID: id, Task: dataset, Prompt: prompt, Answers: answers, AllClasses: classes,
		Metric: metricName, MaxNewTokens: maxNew, Length: length, Language: language}, nil
}
