package metric

import (
	"math"
	"sort"
)

// SequenceMatcher is Python's difflib.SequenceMatcher(None, a, b) over the
// code points of two strings, with autojunk on (the default): when b has at
// least 200 elements, every element occurring more than len(b)/100 + 1 times
// is "popular" and cannot start a match (it can still extend one).
type SequenceMatcher struct {
	a, b []rune
	b2j  map[rune][]int // element of b -> ascending indices in b, popular elements removed
}

// Match is a matching block: a[A:A+Size] == b[B:B+Size].
type Match struct{ A, B, Size int }

// NewSequenceMatcher prepares the comparison of a with b.
func NewSequenceMatcher(a, b string) *SequenceMatcher {
	s := &SequenceMatcher{a: []rune(a), b: []rune(b)}
	s.b2j = make(map[rune][]int)
	for j, r := range s.b {
		s.b2j[r] = append(s.b2j[r], j)
	}
	if n := len(s.b); n >= 200 {
		ntest := n/100 + 1
		for r, idx := range s.b2j {
			if len(idx) > ntest {
				delete(s.b2j, r)
			}
		}
	}
	return s
}

// findLongestMatch is difflib's find_longest_match(alo, ahi, blo, bhi) with
// no junk function: the longest block starting earliest in a, then earliest
// in b, found among non-popular elements and then extended on both sides by
// equal elements.
func (s *SequenceMatcher) findLongestMatch(alo, ahi, blo, bhi int) Match {
	besti, bestj, bestsize := alo, blo, 0
	j2len := map[int]int{}
	for i := alo; i < ahi; i++ {
		newj2len := map[int]int{}
		for _, j := range s.b2j[s.a[i]] {
			if j < blo {
				continue
			}
			if j >= bhi {
				break
			}
			k := j2len[j-1] + 1
			newj2len[j] = k
			if k > bestsize {
				besti, bestj, bestsize = i-k+1, j-k+1, k
			}
		}
		j2len = newj2len
	}
	for besti > alo && bestj > blo && s.a[besti-1] == s.b[bestj-1] {
		besti, bestj, bestsize = besti-1, bestj-1, bestsize+1
	}
	for besti+bestsize < ahi && bestj+bestsize < bhi && s.a[besti+bestsize] == s.b[bestj+bestsize] {
		bestsize++
	}
	return Match{besti, bestj, bestsize}
}

// MatchingBlocks is difflib's get_matching_blocks: non-adjacent matching
// blocks in increasing order, ending with the sentinel {len(a), len(b), 0}.
func (s *SequenceMatcher) MatchingBlocks() []Match {
	la, lb := len(s.a), len(s.b)
	queue := [][4]int{{0, la, 0, lb}}
	var blocks []Match
	for len(queue) > 0 {
		q := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		alo, ahi, blo, bhi := q[0], q[1], q[2], q[3]
		x := s.findLongestMatch(alo, ahi, blo, bhi)
		if x.Size == 0 {
			continue
		}
		blocks = append(blocks, x)
		if alo < x.A && blo < x.B {
			queue = append(queue, [4]int{alo, x.A, blo, x.B})
		}
		if x.A+x.Size < ahi && x.B+x.Size < bhi {
			queue = append(queue, [4]int{x.A + x.Size, ahi, x.B + x.Size, bhi})
		}
	}
	sort.Slice(blocks, func(i, j int) bool {
		if blocks[i].A != blocks[j].A {
			return blocks[i].A < blocks[j].A
		}
		if blocks[i].B != blocks[j].B {
			return blocks[i].B < blocks[j].B
		}
		return blocks[i].Size < blocks[j].Size
	})
	var out []Match
	cur := Match{}
	for _, m := range blocks {
		if cur.A+cur.Size == m.A && cur.B+cur.Size == m.B {
			cur.Size += m.Size
			continue
		}
		if cur.Size > 0 {
			out = append(out, cur)
		}
		cur = m
	}
	if cur.Size > 0 {
		out = append(out, cur)
	}
	return append(out, Match{la, lb, 0})
}

// Ratio is difflib's ratio(): 2*M/T with M the matched elements and T the
// total length of both sequences; 1 when both are empty.
func (s *SequenceMatcher) Ratio() float64 {
	matches := 0
	for _, m := range s.MatchingBlocks() {
		matches += m.Size
	}
	total := len(s.a) + len(s.b)
	if total == 0 {
		return 1
	}
	return 2.0 * float64(matches) / float64(total)
}

// FuzzRatio is fuzzywuzzy 0.18's fuzz.ratio without python-Levenshtein:
// 100 for equal strings, 0 when either is empty, else difflib's ratio in
// percent rounded half to even (Python's round).
func FuzzRatio(s1, s2 string) int {
	if s1 == s2 {
		return 100
	}
	if s1 == "" || s2 == "" {
		return 0
	}
	return int(math.RoundToEven(100 * NewSequenceMatcher(s1, s2).Ratio()))
}
