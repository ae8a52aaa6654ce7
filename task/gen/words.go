package gen

import (
	"sort"
	"strings"
	"sync"
	"unicode"

	"github.com/namm-dev/namm/task/gen/haystack"
)

// adjectives and nouns make RULER-style word keys and values ("adjective-noun").
var adjectives = strings.Fields(`
able absent acidic active adorable afraid agile alert ambitious amused ancient angry anxious
aquatic arctic aromatic ashamed awake awful bashful bitter bland blissful bold boring brave
breezy brief bright brisk broad bumpy busy calm careful cheerful chilly clever cloudy clumsy
coastal cold colorful cosmic cozy crazy creamy crisp crooked cruel curious curly damp dapper
dark dazzling deep delicate dizzy dreamy dry dusty eager early earnest elastic electric elegant
empty endless exotic faded faint famous fancy fearless feisty fierce filthy flaky flat fluffy
foggy fragile frantic fresh friendly frosty frozen funny fuzzy gentle giant gifted gigantic
glad gleaming glossy golden graceful grand greasy green grumpy guarded hairy handsome happy
hardy harsh hasty heavy hidden hollow honest hopeful huge humble hungry icy idle jolly juicy
keen kind lazy level lively lonely loud lucky lush magic majestic mellow merry messy mighty
misty modern modest muddy narrow nervous nimble noisy odd orange pale patient plain plucky
polite proud purple quick quiet rapid rare rich rigid rocky rough round royal rustic salty
scary shaggy shiny shy silent silky simple sleepy slim slow small smooth snowy soft solid
sour spicy spiky splendid spotty steady sticky stormy strange strong sturdy sunny sweet swift
tall tame tender thirsty tidy tiny tired tough tranquil tricky ugly unusual upbeat vast velvet
vivid warm wary weary wicked wide wild windy wise witty wooden young zany zealous`)

var nouns = strings.Fields(`
acorn album anchor ant apple apron arrow attic avocado badge bagel balloon banjo barn basket
bat beach beacon bean bear beaver bee bell bench bicycle biscuit blanket boat bonnet book boot
bottle bracelet bread bridge broom bubble bucket buffalo button cabbage cabin cactus cake camel
camera candle canoe canyon carpet carrot castle cat cave cello chair cheese cherry chimney
clock cloud coconut comet compass cookie coral cotton cow crab crayon cricket crown cup
curtain cushion daisy deer desk diamond dolphin donkey door dragon drum duck eagle easel egg
elephant elk engine falcon feather fence fern fiddle fig flag flute fork fountain fox frog
garden garlic gate ginger giraffe glove goat goose grape guitar hammer harbor harp hat hazel
hedgehog helmet heron hill honey horse hut igloo island jacket jar jelly kangaroo kettle key
kite kitten ladder lamp lantern lemon leopard lettuce lily lion lizard lobster locket magnet
mango map maple marble meadow melon mirror mitten monkey moose mountain muffin mushroom needle
nest noodle oak oar octopus olive onion orchid otter owl paddle pancake panda parrot peach
pear pebble pelican pencil penguin pepper piano pickle pigeon pillow pine pizza plum pond
poppy potato pumpkin puppy quilt rabbit radish raft rainbow raven ribbon river robin rocket
rose saddle sailor salmon sandal scarf seal shell ship shovel sled snail sock sofa spoon
squirrel star statue stove sugar swan table teapot tent tiger toast tomato torch tractor
trumpet tulip turtle umbrella valley vase violin wagon walnut walrus whale whistle willow
window wolf yacht zebra`)

var (
	vocabOnce sync.Once
	vocab     []string
)

// bookVocabulary lists the distinct words (3-12 lowercase letters) that occur in lowercase in
// the haystack texts, sorted: the word pool of common words extraction (RULER draws from
// wonderwords' noun, adjective and verb lists, which cannot be had here).
func bookVocabulary() []string {
	vocabOnce.Do(func() {
		seen := map[string]bool{}
		for _, text := range haystack.Texts() {
			for _, w := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) }) {
				if len(w) < 3 || len(w) > 12 || !isLowerASCII(w) {
					continue
				}
				seen[w] = true
			}
		}
		for w := range seen {
			vocab = append(vocab, w)
		}
		sort.Strings(vocab)
	})
	return vocab
}

func isLowerASCII(w string) bool {
	for i := 0; i < len(w); i++ {
		if w[i] < 'a' || w[i] > 'z' {
			return false
		}
	}
	return true
}

// Syllables of invented names (places, people, things) for question answering.
var (
	onsets = strings.Fields("b br c d dr f g gl h k l m n p pr r s st t th tr v w z")
	nuclei = strings.Fields("a e i o u ai ea ou")
	codas  = []string{"", "", "", "n", "r", "l", "s", "m", "th", "nd", "rk"}
)

// inventName makes a capitalised pseudo-word of the given number of syllables plus a suffix.
func inventName(r *rng, syllables int, suffix string) string {
	var b strings.Builder
	for i := 0; i < syllables; i++ {
		b.WriteString(onsets[r.intn(len(onsets))])
		b.WriteString(nuclei[r.intn(len(nuclei))])
		if i == syllables-1 && suffix != "" {
			break
		}
		b.WriteString(codas[r.intn(len(codas))])
	}
	b.WriteString(suffix)
	s := b.String()
	return strings.ToUpper(s[:1]) + s[1:]
}
