package gen

import (
	"fmt"
	"strconv"
	"strings"
)

// The fact tasks compose their statements and questions from a small grammar instead of a
// fixed template: facts about random entities are stated in one of many forms (with optional
// openers), hidden in haystack text, and asked for in one of many forms, after one of several
// instructions and before one of several answer prefixes. Five kinds:
//   - retrieve: one fact among distractor facts about other entities or other attributes;
//   - update: a fact stated, then changed later in the text; the answer is the last value;
//   - chain: two facts that must be joined (X's partner is Y; Y's code is V; X's partner's code?);
//   - count: several events, some about the asked entity; the answer is how many;
//   - list: the entities that share an asked value; the answer is all of them;
//   - collect: one entity has several values of one attribute, stated apart; the answer is all
//     of them, in the order of the text.
// "facts" is the training family of the base models. "records" is a family with its own
// statement and question forms and instructions that no training example uses: it measures
// whether a model reads, or has learned the training phrasings.

func init() {
	register(&task{
		info: TaskInfo{Name: "facts", Metric: "contains", MaxNewTokens: 32,
			Description: "facts about random entities, stated and asked in varied phrasings (retrieve, update, chain, count, list, collect); the base models' training family"},
		opts: append([]opt{
			enumOpt("kind", "any", "what is asked", "any", "retrieve", "update", "chain", "count", "list", "collect"),
			intOpt("distractors", "6", "distractor facts", 0, 200),
			intOpt("lookalike", "0", "percent of the distractor entities named like the asked one (a shared first name, surname, colour...)", 0, 100),
		}, textOpts()...),
		newInstance: func(g *genContext, i int) (*instance, error) { return newFacts(g, i, trainGrammar) },
	})
	register(&task{
		info: TaskInfo{Name: "records", Metric: "contains", MaxNewTokens: 32,
			Description: "registry facts in phrasings that no training example uses (a held-out family for the base models: retrieve among distractors)"},
		opts: append([]opt{
			intOpt("distractors", "6", "distractor facts", 0, 200),
		}, textOpts()...),
		newInstance: func(g *genContext, i int) (*instance, error) { return newFacts(g, i, heldOutGrammar) },
	})
}

// attribute is something an entity has, with the kind of value it takes.
type attribute struct{ name, value string }

var attributes = []attribute{
	{"favorite color", "color"}, {"access code", "code"}, {"locker number", "number"},
	{"home town", "town"}, {"pet's name", "name"}, {"password", "word"}, {"badge number", "number"},
	{"secret word", "word"}, {"lucky number", "number"}, {"phone extension", "number"},
	{"license plate", "code"}, {"favorite fruit", "fruit"}, {"room number", "number"},
	{"account number", "number"}, {"birth year", "year"}, {"ticket code", "code"},
	{"favorite city", "town"}, {"nickname", "name"}, {"project name", "word"}, {"desk number", "number"},
	{"boat's name", "name"}, {"favorite instrument", "instrument"}, {"hometown", "town"},
	{"shipping code", "code"}, {"best friend", "person"}, {"manager", "person"}, {"doctor", "person"},
	{"gate number", "number"}, {"serial number", "code"}, {"favorite flower", "flower"},
}

// entityClass is a kind of thing that facts are about: how to name one, and the attributes
// it has. Training draws people, organisations and objects, so that a model learns to read a
// fact about anything, not a person's attributes.
type entityClass struct {
	name  func(r *rng) string
	attrs []attribute
	// person: the phrasings that speak of "their" and of saying, choosing or keeping apply.
	person bool
}

var (
	personClass = entityClass{name: func(r *rng) string { return factValue(r, "person") }, attrs: attributes, person: true}
	orgClass    = entityClass{
		name: func(r *rng) string {
			switch r.intn(3) {
			case 0:
				return "Project " + capitalize(pickOne(r, nouns))
			case 1:
				return "the " + factValue(r, "town") + " " + pickOne(r, orgKinds)
			default:
				return pickOne(r, lastNames) + " " + pickOne(r, firmKinds)
			}
		},
		attrs: []attribute{
			{"budget code", "code"}, {"team lead", "person"}, {"headquarters", "town"}, {"account number", "number"},
			{"code name", "word"}, {"founding year", "year"}, {"contact person", "person"}, {"phone extension", "number"},
			{"archive number", "long"}, {"launch date", "date"}, {"meeting room", "number"}, {"reference number", "long"},
			{"official color", "color"}, {"opening date", "date"},
		},
	}
	objectClass = entityClass{
		name: func(r *rng) string { return "the " + pickOne(r, colors) + " " + pickOne(r, objects) },
		attrs: []attribute{
			{"serial number", "code"}, {"combination", "long"}, {"owner", "person"}, {"storage room", "number"},
			{"label", "word"}, {"tag number", "number"}, {"shelf code", "code"}, {"weight in grams", "number"},
			{"purchase date", "date"}, {"place of origin", "town"}, {"inventory number", "long"},
		},
	}
	orgKinds  = strings.Fields(`Society Trust Lodge Archive Guild Cooperative Observatory Museum Library Orchestra Rowing-Club`)
	firmKinds = []string{"Holdings", "& Daughters", "Brothers", "Logistics", "Press", "Engineering", "Bakery", "Shipping"}
	objects   = strings.Fields(`notebook suitcase folder envelope cabinet bicycle umbrella trunk lantern kettle typewriter telescope satchel clock`)
	months    = strings.Fields(`January February March April May June July August September October November December`)
)

func capitalize(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

var (
	firstNames = strings.Fields(`Ada Bruno Clara Dmitri Elena Farid Greta Hugo Ines Jonas Kiri Lena
Marco Nadia Oskar Priya Quentin Rosa Stefan Tamsin Ulla Viktor Wanda Xavier Yara Zoltan Amara
Basil Celine Darius Esme Felix Gideon Hana Ivo Juno Kasimir Leila Milo Noor Otto Petra Rafael
Selma Tobias Uma Vera Wilhelm Yusuf Zelda Anselm Beatrix Cosmo Delphine Emil Fiona Gustav Helga`)
	lastNames = strings.Fields(`Abernathy Blackwood Castellano Dunmore Eriksen Fairweather Galloway
Hartigan Ibarra Jablonski Kowalczyk Lindqvist Marchetti Nakamura Okonkwo Pemberton Quillfeather
Rasmussen Sandoval Thistlewood Underhill Vasquez Whitcombe Yilmaz Zimmerman Ashdown Brightwater
Calloway Delacroix Everly Fenwick Greaves Holloway Ingram Jardine Kettering Larkspur Montague
Northcott Ormsby Penhaligon Ravenscroft Stanhope Tremaine Vandermeer Wexford Yardley`)
	colors      = strings.Fields(`crimson teal amber violet ochre indigo scarlet turquoise maroon olive cobalt magenta saffron lavender emerald silver`)
	fruits      = strings.Fields(`apricot mango quince lychee papaya guava plum fig persimmon kumquat pomegranate tangerine`)
	instruments = strings.Fields(`cello oboe harp bassoon clarinet viola trombone mandolin accordion flute xylophone banjo`)
	flowers     = strings.Fields(`tulip orchid peony lilac marigold dahlia iris camellia hyacinth jasmine zinnia aster`)
	syllables   = strings.Fields(`bar dun vel mor ka ri sten hol wick ford gan tor lis mar quen bel ash thorn ley brook dal mere`)
)

// factValue draws a value of the given kind.
func factValue(r *rng, kind string) string {
	pick := func(xs []string) string { return xs[r.intn(len(xs))] }
	switch kind {
	case "color":
		return pick(colors)
	case "fruit":
		return pick(fruits)
	case "instrument":
		return pick(instruments)
	case "flower":
		return pick(flowers)
	case "number":
		return strconv.Itoa(100 + r.intn(99900))
	case "year":
		return strconv.Itoa(1900 + r.intn(120))
	case "long":
		return strconv.Itoa(100000 + r.intn(999900000))
	case "date":
		return fmt.Sprintf("%d %s %d", 1+r.intn(28), months[r.intn(12)], 1900+r.intn(120))
	case "code":
		return fmt.Sprintf("%c%c-%d", 'A'+rune(r.intn(26)), 'A'+rune(r.intn(26)), 1000+r.intn(9000))
	case "town":
		n := 2 + r.intn(2)
		var b strings.Builder
		for k := 0; k < n; k++ {
			b.WriteString(pick(syllables))
		}
		s := b.String()
		return strings.ToUpper(s[:1]) + s[1:]
	case "name":
		return pick(firstNames)
	case "person":
		return pick(firstNames) + " " + pick(lastNames)
	default: // word
		return adjectives[r.intn(len(adjectives))] + "-" + nouns[r.intn(len(nouns))]
	}
}

// grammar is one family's set of phrasings. Placeholders: {E} entity, {A} attribute, {V} value.
type grammar struct {
	state       []string // statements of a fact
	personState []string // statements that fit only a person ("their", "said")
	openers     []string // optional sentence openers of a statement
	ask         []string // questions
	update      []string // statements that change a fact (update kind)
	intro       []string // optional instructions before the text ({Q} repeats the question)
	prefixes    []string // answer prefixes
	// echoes are answer prefixes that restate the question ({E}, {A}), as RULER's do, for the
	// kinds that ask one entity's attribute (retrieve, update).
	echoes  []string
	kinds   []string      // the kinds this family asks
	classes []entityClass // what its facts are about (chain and count ask about people)
}

var trainGrammar = grammar{
	state: []string{
		"{E}'s {A} is {V}.", "The {A} of {E} is {V}.", "{V} is the {A} of {E}.", "For {E}, the {A} is {V}.",
		"The {A} for {E} is {V}.", "{E}'s {A} happens to be {V}.",
		"Remember that the {A} belonging to {E} is {V}.", "Note: the {A} of {E} is {V}.", "It is known that {E}'s {A} is {V}.", "{E} — {A}: {V}.", "{A} of {E}: {V}.",
		"In case anyone asks, the {A} for {E} is {V}.", "{E}'s {A}? That would be {V}.",
		"We were told that {E}'s {A} is {V}.", "The {A} assigned to {E} is {V}.", "{V} — that is the {A} of {E}.",
		"Don't forget: {E}'s {A} is {V}.", "The {A} linked to {E} is {V}.", "Write this down: the {A} for {E} is {V}.",
		"Regarding {E}, the {A} is {V}.", "The {A} of {E} was set to {V}.", "{E} (the {A} is {V}).",
	},
	personState: []string{
		"{E} has {V} as their {A}.", "{E} mentioned that their {A} is {V}.", "As for {E}, their {A} is {V}.",
		"{E} keeps {V} as the {A}.", "The {A} that {E} uses is {V}.", "{E} said that their {A} is {V}.",
		"{E} chose {V} as their {A}.",
	},
	openers: []string{"", "", "", "By the way, ", "Incidentally, ", "For the record, ", "Also, ", "Interestingly, "},
	ask: []string{
		"What is {E}'s {A}?", "What is the {A} of {E}?", "What is the {A} for {E}?", "Tell me the {A} of {E}.",
		"Which {A} does {E} have?", "{E}'s {A} is what?", "Can you recall {E}'s {A}?", "What {A} does {E} use?",
		"Do you know the {A} of {E}?", "Please state the {A} belonging to {E}.", "Give the {A} of {E}.",
		"I need the {A} for {E}. What is it?", "Find the {A} of {E} in the text.",
		"According to the text, what is the {A} of {E}?", "What was the {A} assigned to {E}?",
		"Which value is the {A} of {E}?", "{E}: what is the {A}?", "Search the document: what is {E}'s {A}?",
	},
	update: []string{
		"Later, {E}'s {A} was changed to {V}.", "Since then, the {A} of {E} has been changed to {V}.",
		"Update: the {A} of {E} is now {V}.", "After that, the {A} for {E} was switched to {V}.",
		"The {A} of {E} was later replaced by {V}.", "Correction, with an update: {E}'s {A} is {V} from now on.",
	},
	intro: []string{
		"", "Read the following text and answer the question at the end.\n",
		"Some facts are hidden in the text below. Pay attention to them.\n",
		"Question: {Q}\nRead the text and answer.\n", "Below is a long document.\n",
		"Answer the question using the document.\n", "Read carefully: a question about one detail follows.\n",
		"The following passage contains several small facts.\n", "Here is a text. Afterwards, answer: {Q}\n",
	},
	prefixes: []string{"Answer:", "The answer is", "A:", "Response:", "Answer: The answer is"},
	echoes:   []string{"Answer: {E}'s {A} is", "The {A} of {E} is", "Answer: the {A} for {E} is"},
	kinds:    []string{"retrieve", "update", "chain", "count", "list", "collect"},
	classes:  []entityClass{personClass, personClass, orgClass, objectClass},
}

var heldOutGrammar = grammar{
	state: []string{
		"{E} registered {V} as the {A} in the official registry.",
		"The registry lists {V} as the {A} registered by {E}.",
		"According to the registry, {E} filed {V} under {A}.",
	},
	openers: []string{""},
	ask: []string{
		"Which {A} did {E} register?", "According to the registry, what {A} was filed by {E}?",
		"Look up the registry: under {A}, what did {E} file?",
	},
	intro:    []string{"The registry entries below are scattered through an unrelated text.\n"},
	prefixes: []string{"Answer:"},
	kinds:    []string{"retrieve"},
	classes:  []entityClass{personClass},
}

func pickOne(r *rng, xs []string) string { return xs[r.intn(len(xs))] }

// lookalikeOf draws an unused entity of class c whose name shares a word with target's ("Rosa
// Ibarra" and "Rosa Vasquez", "the teal kettle" and "the teal clock"), so that a model must
// match the whole name, as niah_multikey's keys (huge-zebra, hungry-zebra) ask. After many
// draws without one it takes any unused entity.
func lookalikeOf(r *rng, c entityClass, target string, used map[string]bool) string {
	words := map[string]bool{}
	for _, w := range strings.Fields(target) {
		if w != "the" && w != "Project" {
			words[w] = true
		}
	}
	for k := 0; ; k++ {
		e := c.name(r)
		if used[e] {
			continue
		}
		shared := k >= 2000
		for _, w := range strings.Fields(e) {
			shared = shared || words[w]
		}
		if shared {
			used[e] = true
			return e
		}
	}
}

// collectStates state one of several values of an entity's attribute (the collect kind).
var collectStates = []string{
	"One {A} of {E} is {V}.", "Another {A} of {E} is {V}.", "{E} also has the {A} {V}.",
	"{V} is one more {A} of {E}.", "{E} has more than one {A}; one of them is {V}.",
	"Add {V} to the {A} entries of {E}.", "A further {A} for {E}: {V}.", "{V} is also a {A} of {E}.",
	"One of the {A} values of {E} is {V}.", "{E} lists {V} as an additional {A}.",
}

// collectQuestions ask for every value of an entity's attribute.
var collectQuestions = []string{
	"What are all the {A} values of {E}?", "List every {A} of {E} mentioned in the text.",
	"Name all of the {A} entries for {E}.", "Which {A} values does {E} have? Give all of them.",
	"Give each {A} of {E}, in the order they appear.", "{E} has several {A} values. What are they?",
	"Collect all {A} values stated for {E}.",
}

// say fills a phrasing with an entity, attribute and value, after an optional opener. A
// phrasing that starts with a word of its own ("The", "Note") is lower-cased after an opener;
// one that starts with a name keeps it; one that starts with a value keeps the value's case
// and takes no opener.
func (gr grammar) say(r *rng, forms []string, e, a, v string) string {
	form := pickOne(r, forms)
	s := fill(form, "{E}", e, "{A}", a, "{V}", v)
	if strings.HasPrefix(form, "{V}") {
		return s
	}
	if op := pickOne(r, gr.openers); op != "" {
		if !strings.HasPrefix(form, "{") {
			s = strings.ToLower(s[:1]) + s[1:]
		}
		s = op + s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// stateOf states a fact about an entity of the class c.
func (gr grammar) stateOf(r *rng, c entityClass, e, a, v string) string {
	if c.person && len(gr.personState) > 0 && r.intn(len(gr.state)+len(gr.personState)) >= len(gr.state) {
		return gr.say(r, gr.personState, e, a, v)
	}
	return gr.say(r, gr.state, e, a, v)
}

func newFacts(g *genContext, i int, gr grammar) (*instance, error) {
	s := g.spec
	r := g.rng(i)
	kind := s.option("kind")
	if kind == "" || kind == "any" {
		kind = pickOne(r, gr.kinds)
	}
	nDistract := s.intOption("distractors", 6)
	lookalike := s.intOption("lookalike", 0)
	used := map[string]bool{}
	// Retrieve, update and collect ask about an entity of any class of the family; chain,
	// count and list speak of people.
	class := personClass
	if kind == "retrieve" || kind == "update" || kind == "collect" {
		class = gr.classes[r.intn(len(gr.classes))]
	}
	entity := func() string {
		for {
			e := class.name(r)
			if !used[e] {
				used[e] = true
				return e
			}
		}
	}
	attr := class.attrs[r.intn(len(class.attrs))]
	for kind == "collect" && attr.value == "person" { // several best friends read as a list of people
		attr = class.attrs[r.intn(len(class.attrs))]
	}
	// value draws a value not drawn before; small value sets (colors, fruits) may run out with
	// many distractors, and then a distractor may repeat a value, but never an answer's.
	reserved := map[string]bool{}
	value := func(a attribute) string {
		for k := 0; ; k++ {
			v := factValue(r, a.value)
			if !used[v] || (k > 64 && !reserved[v]) {
				used[v] = true
				return v
			}
		}
	}
	answer := func(a attribute) string {
		v := value(a)
		reserved[v] = true
		return v
	}
	target := entity()
	var facts []string // inserted in order of their depths
	var answers []string
	var question string
	ordered := 0 // the first facts that must appear in the given order (update, collect)
	switch kind {
	case "retrieve":
		v := answer(attr)
		facts = append(facts, gr.stateOf(r, class, target, attr.name, v))
		answers = []string{v}
		question = fill(pickOne(r, gr.ask), "{E}", target, "{A}", attr.name)
	case "update":
		v1, v2 := answer(attr), answer(attr)
		facts = append(facts, gr.stateOf(r, class, target, attr.name, v1), gr.say(r, gr.update, target, attr.name, v2))
		answers = []string{v2}
		ordered = 2
		question = fill(pickOne(r, []string{
			"What is {E}'s {A} now?", "What is the current {A} of {E}?", "After all changes, what is {E}'s {A}?",
			"What is {E}'s latest {A}?"}), "{E}", target, "{A}", attr.name)
	case "chain":
		link := pickOne(r, []string{"best friend", "manager", "doctor"})
		mid := entity()
		v := answer(attr)
		facts = append(facts, gr.stateOf(r, class, target, link, mid), gr.stateOf(r, class, mid, attr.name, v))
		answers = []string{v}
		question = fill(pickOne(r, []string{
			"What is the {A} of {E}'s {L}?", "{E}'s {L} has which {A}?", "Which {A} does the {L} of {E} have?"}),
			"{E}", target, "{A}", attr.name, "{L}", link)
	case "count":
		thing := pickOne(r, fruits)
		n := 1 + r.intn(5)
		verbs := []string{"{E} bought a {T}.", "{E} picked up one {T} at the market.", "Once again, {E} got a {T}.", "{E} took a {T} home."}
		for k := 0; k < n; k++ {
			facts = append(facts, fill(pickOne(r, verbs), "{E}", target, "{T}", thing))
		}
		for k := 0; k < 1+r.intn(4); k++ { // the same thing bought by others
			facts = append(facts, fill(pickOne(r, verbs), "{E}", entity(), "{T}", thing))
		}
		answers = []string{strconv.Itoa(n)}
		question = fill(pickOne(r, []string{
			"How many times did {E} get a {T}?", "How many {T}s did {E} buy in total?", "Count how often {E} got a {T}."}),
			"{E}", target, "{T}", thing)
	case "list":
		v := answer(attr)
		n := 2 + r.intn(3)
		names := []string{target}
		for len(names) < n {
			names = append(names, entity())
		}
		for _, e := range names {
			facts = append(facts, gr.stateOf(r, class, e, attr.name, v))
		}
		answers = names
		question = fill(pickOne(r, []string{
			"Who has {V} as their {A}? Name everyone.", "Which people have the {A} {V}?", "List everyone whose {A} is {V}."}),
			"{V}", v, "{A}", attr.name)
	case "collect":
		n := 2 + r.intn(4)
		for k := 0; k < n; k++ {
			v := answer(attr)
			forms := collectStates
			if k == 0 && r.intn(2) == 0 {
				forms = gr.state // the first may be stated as if it were the only one
			}
			facts = append(facts, gr.say(r, forms, target, attr.name, v))
			answers = append(answers, v)
		}
		ordered = n
		question = fill(pickOne(r, collectQuestions), "{E}", target, "{A}", attr.name)
	default:
		return nil, fmt.Errorf("facts: unknown kind %q", kind)
	}
	// Distractors: other people with the asked attribute, and the target with other attributes.
	for k := 0; k < nDistract; k++ {
		a := attr
		e := target
		if k%2 == 0 || kind == "list" || kind == "count" {
			if lookalike > 0 && r.intn(100) < lookalike {
				e = lookalikeOf(r, class, target, used)
			} else {
				e = entity()
			}
		} else {
			for a.name == attr.name || a.name == "best friend" || a.name == "manager" || a.name == "doctor" {
				a = class.attrs[r.intn(len(class.attrs))]
			}
		}
		facts = append(facts, gr.stateOf(r, class, e, a.name, value(a)))
	}
	depths := make([]float64, len(facts))
	for k := range depths {
		depths[k] = r.float()
	}
	depth := g.stratifiedDepth(i, r)
	depths[0] = depth
	for k := 1; k < ordered; k++ { // an update after its value, collect's values in answer order
		if depths[k] < depths[k-1] {
			depths[k] = depths[k-1] + (1-depths[k-1])*r.float()
		}
	}
	question = capitalize(question)
	intro := fill(pickOne(r, gr.intro), "{Q}", question)
	prefix := " " + pickOne(r, gr.prefixes)
	if (kind == "retrieve" || kind == "update") && len(gr.echoes) > 0 && r.intn(3) == 0 {
		prefix = " " + capitalize(fill(pickOne(r, gr.echoes), "{E}", target, "{A}", attr.name))
	}
	c, err := g.corpus()
	if err != nil {
		return nil, err
	}
	start := c.sentenceStart(r.intn(c.len()))
	in := &instance{answers: answers, answerPrefix: prefix, depth: depth}
	in.minN, in.maxN, in.unitTokens = 0, 64*c.len(), 1.3
	in.parts = &promptParts{before: intro, after: "\n" + question + prefix, input: question}
	in.build = func(n int) string {
		return intro + c.insertAtSentences(start, n, depths, facts) + "\n" + question + prefix
	}
	in.check = func(prompt string) error {
		for _, f := range facts {
			if !strings.Contains(prompt, f) {
				return fmt.Errorf("facts: statement %q missing from the prompt", f)
			}
		}
		return nil
	}
	return in, nil
}
