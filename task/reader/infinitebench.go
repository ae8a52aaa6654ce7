package reader

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// InfiniteBench prompt templates: the "yarn-mistral" set of InfiniteBench's
// src/prompt.py (also used there for Yi-200K and ChatGLM3), the set written
// for base models without a chat template, verbatim.
var infiniteBenchTemplates = map[string]string{
	"passkey":             "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you about the important information.\n\n{context}\n\n{input}\n\nThe pass key is",
	"number_string":       "There is an important info hidden inside a lot of irrelevant text. Find it. I will quiz you about the important information there.\n\n{context}\n\n{input}\n\nThe sequence of digits is",
	"kv_retrieval":        "Extract the value corresponding to the specified key in the JSON object below.\n\n{context}\n\n{input}",
	"longbook_sum_eng":    "Summarize the book below.\n\n{context}\n\nSummary:",
	"longbook_choice_eng": "Read the book and answer the question.\n\n{context}\n\nQuestion: {question}\nA. {OPTION_A}\nB. {OPTION_B}\nC. {OPTION_C}\nD. {OPTION_D}\n\nThe letter of the correct answer is",
	"longbook_qa_eng":     "Read the book and answer the question. Be very concise in your answer.\n\n{context}\n\nQuestion: {question}\nAnswer:",
	"longbook_qa_chn":     "阅读以下书籍然后回答问题。\n\n{context}\n\n问题：{question}\n答案：",
	"math_find":           "{prefix}\n\n{context}\n\n{input}",
	"code_debug":          "Following is a Python code where exactly one of the functions/methods has a deliberate error that makes it crash.\n\n{context}\n\nOptions:\nA. {OPTION_A}\nB. {OPTION_B}\nC. {OPTION_C}\nD. {OPTION_D}\n\nThe correct option is:",
	"longdialogue_qa_eng": "Below is a dialogue script where one random occurrence of a character name is replaced with \"$$MASK$$\", and you should try to guess who that character is.\n\n{context}\n\nThe name that has been replaced with $$MASK$$ is likely",
}

// infiniteBenchMaxNew is DATA_NAME_TO_MAX_NEW_TOKENS of src/eval_utils.py.
var infiniteBenchMaxNew = map[string]int{
	"passkey": 6, "number_string": 12, "kv_retrieval": 50, "longbook_sum_eng": 1200,
	"longbook_choice_eng": 40, "longbook_qa_eng": 40, "longbook_qa_chn": 40,
	"longdialogue_qa_eng": 40, "math_find": 3, "code_debug": 5,
}

// infiniteBenchMetric maps tasks to task/metric names. Only the QA tasks
// use InfiniteBench's own metric (qa_f1, qa_f1_zh). The exact-answer tasks
// are scored by InfiniteBench with task-specific parsers (first integer,
// split on punctuation, option letter or text at the start); "contains"
// (answer text found in the prediction) stands in for them and is more
// lenient. longbook_sum_eng uses ROUGE-L of rouge 1.0.1 instead of
// InfiniteBench's rouge-Lsum.
var infiniteBenchMetric = map[string]string{
	"passkey": "contains", "number_string": "contains", "kv_retrieval": "contains",
	"math_find": "contains", "longdialogue_qa_eng": "contains",
	"longbook_choice_eng": "contains", "code_debug": "contains",
	"longbook_qa_eng": "qa_f1", "longbook_qa_chn": "qa_f1_zh", "longbook_sum_eng": "rouge",
}

var mathFindTarget = regexp.MustCompile(`The .+ of`)

// ReadInfiniteBench reads an InfiniteBench JSONL file (fields id, context,
// input, answer (string or list), options). The task is the file name
// (passkey.jsonl, kv_retrieval.jsonl, longbook_qa_eng.jsonl, ...); supported:
// passkey, number_string, kv_retrieval, longbook_qa_eng, longbook_qa_chn,
// longbook_choice_eng, longbook_sum_eng, longdialogue_qa_eng, math_find,
// code_debug. For the multiple-choice tasks the answers are the option text
// and its letter, as InfiniteBench's get_answer gives them.
func ReadInfiniteBench(path string, opts Options) ([]Sample, error) {
	task := taskFromPath(path)
	tmpl, ok := infiniteBenchTemplates[task]
	if !ok {
		names := make([]string, 0, len(infiniteBenchTemplates))
		for n := range infiniteBenchTemplates {
			names = append(names, n)
		}
		return nil, fmt.Errorf("reader: %s: unknown InfiniteBench task %q (file must be named TASK.jsonl, one of %s)", path, task, strings.Join(slices.Sorted(slices.Values(names)), ", "))
	}
	return readJSONL(path, opts, func(o object, line int) (Sample, error) {
		context, err := o.str("context")
		if err != nil {
			return Sample{}, err
		}
		input, err := o.optStr("input")
		if err != nil {
			return Sample{}, err
		}
		answers, err := o.strList("answer", true)
		if err != nil {
			return Sample{}, err
		}
		id, err := o.idField("id")
		if err != nil {
			return Sample{}, err
		}
		if id == "" {
			id = fmt.Sprintf("%s-%d", task, line)
		}
		values := map[string]string{"context": context, "input": input, "question": input}
		switch task {
		case "longbook_choice_eng", "code_debug":
			options, err := o.optStrList("options")
			if err != nil {
				return Sample{}, err
			}
			if len(options) != 4 {
				return Sample{}, badLine("field \"options\": want 4 options, got %d", len(options))
			}
			for k, opt := range options {
				values["OPTION_"+string(rune('A'+k))] = opt
			}
			answers, err = choiceAnswers(answers, options)
			if err != nil {
				return Sample{}, err
			}
		case "math_find":
			m := mathFindTarget.FindString(input)
			if m == "" {
				return Sample{}, badLine("field \"input\": no \"The ... of\" target in %q", input)
			}
			target := strings.ToLower(m)
			values["prefix"] = "What is " + target[:len(target)-3] + " in the following list?"
		}
		prompt, err := format(tmpl, values)
		if err != nil {
			return Sample{}, badLine("%v", err)
		}
		lang := "en"
		if strings.HasSuffix(task, "_chn") {
			lang = "zh"
		}
		return Sample{ID: id, Task: task, Prompt: prompt, Answers: answers, Metric: infiniteBenchMetric[task],
			MaxNewTokens: infiniteBenchMaxNew[task], Language: lang}, nil
	})
}

// choiceAnswers is InfiniteBench's get_answer for multiple-choice tasks:
// [option text, its letter].
func choiceAnswers(answers, options []string) ([]string, error) {
	if len(answers) == 2 && strings.Contains("ABCD", answers[1]) && len(answers[1]) == 1 {
		return answers, nil
	}
	if len(answers) != 1 {
		return nil, badLine("field \"answer\": want one option or [option, letter], got %d items", len(answers))
	}
	for k, opt := range options {
		if opt == answers[0] {
			return []string{answers[0], string(rune('A' + k))}, nil
		}
	}
	return nil, badLine("field \"answer\": %q is not one of the options", answers[0])
}
