package eval

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/namm-dev/namm/task/gen"
	"github.com/namm-dev/namm/task/reader"
)

// Task is a named list of samples: one row group of the results table.
type Task struct {
	Name    string
	Samples []Sample
}

// LoadOptions control LoadTasks.
type LoadOptions struct {
	// Samples caps every task at its first Samples samples, and is the n of
	// generator specs that give none. 0 means no cap (generators: gen.DefaultN).
	Samples int
	// Seed, when HasSeed, is the seed of generator specs that give none.
	Seed    int64
	HasSeed bool
	// SkipBad skips malformed lines of benchmark files (reported through
	// Warn) instead of failing on the first.
	SkipBad bool
	Warn    func(string)
}

// FileKinds are the prefixes of file task specs.
var FileKinds = []string{"longbench", "infinitebench", "ruler", "choubun", "jsonl"}

// fileOptions are the options a file spec may end with (":key=value").
var fileOptions = []string{"template", "metric", "max_new"}

// SpecHelp describes the task spec syntax, for flag help and errors.
func SpecHelp() string {
	return "a built-in suite (" + strings.Join(gen.SuiteNames(), ", ") + "), a generator spec " +
		"TASK[:len=L][:n=N][:seed=S][:key=value...] (tasks: " + strings.Join(generatorNames(), ", ") + "), or a file " +
		"longbench:PATH, infinitebench:PATH, ruler:PATH, choubun:PATH, jsonl:PATH:template=FILE " +
		"(files take :metric=NAME and :max_new=N too)"
}

func generatorNames() []string {
	var names []string
	for _, t := range gen.Tasks() {
		names = append(names, t.Name)
	}
	return names
}

// LoadTasks reads task specs: suite names, generator specs and files (see
// SpecHelp). tok measures generated prompts in the model's tokens.
func LoadTasks(specs []string, tok gen.Counter, opts LoadOptions) ([]Task, error) {
	var tasks []Task
	seen := map[string]bool{}
	add := func(t Task) error {
		if seen[t.Name] {
			return fmt.Errorf("task %s given twice", t.Name)
		}
		seen[t.Name] = true
		if opts.Samples > 0 && len(t.Samples) > opts.Samples {
			t.Samples = t.Samples[:opts.Samples]
		}
		if len(t.Samples) == 0 {
			return fmt.Errorf("task %s has no samples", t.Name)
		}
		uniqueIDs(t.Samples)
		for _, s := range t.Samples {
			if err := s.Validate(); err != nil {
				return err
			}
		}
		tasks = append(tasks, t)
		return nil
	}
	for _, raw := range specs {
		spec := strings.TrimSpace(raw)
		if spec == "" {
			continue
		}
		kind, rest, _ := strings.Cut(spec, ":")
		switch {
		case isFileSpec(spec):
			ts, err := loadFile(kind, rest, opts)
			if err != nil {
				return nil, err
			}
			for _, t := range ts {
				if err := add(t); err != nil {
					return nil, err
				}
			}
		default:
			gspecs, err := GeneratorSpecs(spec, opts)
			if err != nil {
				return nil, err
			}
			for _, s := range gspecs {
				t, err := generate(s, tok)
				if err != nil {
					return nil, err
				}
				if err := add(t); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(tasks) == 0 {
		return nil, fmt.Errorf("no tasks given (a task is %s)", SpecHelp())
	}
	return tasks, nil
}

// GeneratorSpecs reads one task spec that names generated tasks, a built-in
// suite or a generator spec, into generator specs, with opts.Samples as n and
// opts.Seed (when HasSeed) as seed where the spec text gives none. A file
// spec (longbench:PATH, ...) is an error.
func GeneratorSpecs(spec string, opts LoadOptions) ([]gen.Spec, error) {
	spec = strings.TrimSpace(spec)
	if isFileSpec(spec) {
		return nil, fmt.Errorf("task %s is a file, not a generator (a generator is a built-in suite (%s) or TASK[:len=L][:n=N][:seed=S][:key=value...])",
			spec, strings.Join(gen.SuiteNames(), ", "))
	}
	if suite, ok := gen.Suite(spec); ok {
		for i := range suite {
			applyDefaults(&suite[i], "", opts)
		}
		return suite, nil
	}
	s, err := gen.ParseSpec(spec)
	if err != nil {
		return nil, fmt.Errorf("%w\n(a task is %s)", err, SpecHelp())
	}
	applyDefaults(&s, spec, opts)
	return []gen.Spec{s}, nil
}

// applyDefaults sets n and seed from opts where the spec text gave none.
func applyDefaults(s *gen.Spec, text string, opts LoadOptions) {
	fields := strings.Split(text, ":")
	has := func(key string) bool {
		for _, f := range fields[1:] {
			if strings.HasPrefix(f, key+"=") {
				return true
			}
		}
		return false
	}
	if opts.Samples > 0 && !has("n") {
		s.N = opts.Samples
	}
	if opts.HasSeed && !has("seed") {
		s.Seed = opts.Seed
	}
}

func generate(s gen.Spec, tok gen.Counter) (Task, error) {
	samples, err := gen.Generate(s, tok)
	if err != nil {
		return Task{}, fmt.Errorf("task %s: %w", s, err)
	}
	name := taskName(s)
	t := Task{Name: name}
	for _, g := range samples {
		t.Samples = append(t.Samples, Sample{
			ID: g.ID, Task: name, Dataset: g.Task, Prompt: g.Prompt, Answers: g.Answers,
			Metric: g.Metric, MaxNewTokens: g.MaxNewTokens,
		})
	}
	return t, nil
}

// taskName is a generator spec's canonical form without n (the sample count
// is not part of what the task is).
func taskName(s gen.Spec) string {
	var keep []string
	for _, f := range strings.Split(s.String(), ":") {
		if !strings.HasPrefix(f, "n=") {
			keep = append(keep, f)
		}
	}
	return strings.Join(keep, ":")
}

// isFileSpec reports whether a task spec names a file: a file kind and a
// colon ("longbench" alone is the suite, "longbench:PATH" a file).
func isFileSpec(spec string) bool {
	kind, _, found := strings.Cut(spec, ":")
	return found && isFileKind(kind)
}

func isFileKind(kind string) bool {
	for _, k := range FileKinds {
		if k == kind {
			return true
		}
	}
	return false
}

// splitFileSpec separates "PATH[:key=value...]" into the path and its
// options; options are recognised from the end, so a path may hold ':'.
func splitFileSpec(kind, rest string) (string, map[string]string, error) {
	opts := map[string]string{}
	for {
		i := strings.LastIndex(rest, ":")
		if i < 0 {
			break
		}
		key, val, ok := strings.Cut(rest[i+1:], "=")
		if !ok || !contains(fileOptions, key) {
			break
		}
		if _, dup := opts[key]; dup {
			return "", nil, fmt.Errorf("task %s:%s: option %s given twice", kind, rest, key)
		}
		opts[key] = val
		rest = rest[:i]
	}
	if rest == "" {
		return "", nil, fmt.Errorf("task %s: no file path (write %s:PATH)", kind, kind)
	}
	return rest, opts, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// loadFile reads one benchmark file; a file holding several datasets (a
// merged LongBench file) gives one task per dataset, in order of first
// appearance.
func loadFile(kind, rest string, opts LoadOptions) ([]Task, error) {
	path, fo, err := splitFileSpec(kind, rest)
	if err != nil {
		return nil, err
	}
	ro := reader.Options{SkipBad: opts.SkipBad, Warn: opts.Warn, Metric: fo["metric"]}
	if v, ok := fo["max_new"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("task %s:%s: max_new=%q must be a positive integer", kind, rest, v)
		}
		ro.MaxNewTokens = n
	}
	if _, ok := fo["template"]; ok && kind != "jsonl" {
		return nil, fmt.Errorf("task %s:%s: only jsonl files take a template", kind, rest)
	}
	var samples []reader.Sample
	switch kind {
	case "longbench":
		samples, err = reader.ReadLongBench(path, ro)
	case "infinitebench":
		samples, err = reader.ReadInfiniteBench(path, ro)
	case "ruler":
		samples, err = reader.ReadRULER(path, ro)
	case "choubun":
		samples, err = reader.ReadChouBun(path, ro)
	case "jsonl":
		tmpl, ok := fo["template"]
		if !ok {
			return nil, fmt.Errorf("task jsonl:%s: give a prompt template as jsonl:PATH:template=FILE", rest)
		}
		samples, err = reader.ReadJSONL(path, tmpl, ro)
	}
	if err != nil {
		return nil, err
	}
	byTask := map[string]int{}
	var tasks []Task
	for _, rs := range samples {
		i, ok := byTask[rs.Task]
		if !ok {
			i = len(tasks)
			byTask[rs.Task] = i
			tasks = append(tasks, Task{Name: rs.Task})
		}
		tasks[i].Samples = append(tasks[i].Samples, Sample{
			ID: rs.ID, Task: rs.Task, Dataset: rs.Task, Prompt: rs.Prompt, Answers: rs.Answers,
			AllClasses: rs.AllClasses, Metric: rs.Metric, MaxNewTokens: rs.MaxNewTokens,
		})
	}
	if len(tasks) == 0 {
		return nil, fmt.Errorf("task %s:%s: %s holds no samples", kind, rest, path)
	}
	return tasks, nil
}

// uniqueIDs makes sample IDs unique within a task by suffixing repeats
// ("id", "id#2", ...), so that the journal can tell them apart.
func uniqueIDs(samples []Sample) {
	count := map[string]int{}
	for i := range samples {
		id := samples[i].ID
		count[id]++
		if count[id] > 1 {
			samples[i].ID = id + "#" + strconv.Itoa(count[id])
		}
	}
}
