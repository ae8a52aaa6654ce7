package tokenizer

import (
	"container/heap"
	"sync"
	"unicode/utf8"
)

// bpe is the byte-pair-encoding model: a vocabulary and ranked merges.
type bpe struct {
	vocab        map[string]int
	tokens       []string         // id -> token; "" where the id is unused
	merges       map[uint64]merge // (left id, right id) -> merge
	unkID        int              // -1 without unk_token
	fuseUnk      bool
	byteFallback bool
	byteIDs      [256]int // id of "<0xXX>", -1 when absent
	ignoreMerges bool
	prefix       string // continuing_subword_prefix
	suffix       string // end_of_word_suffix

	mu    sync.RWMutex
	cache map[string][]int // word -> ids, for short words
}

type merge struct {
	rank  int32
	newID int32
}

const (
	cacheMaxWordLen = 256
	cacheMaxEntries = 1 << 18
)

func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// symbol is one token of a word while merging, in a doubly linked list.
type symbol struct {
	id         int32
	prev, next int32 // -1 at the ends
	removed    bool
}

// candidate is a possible merge of the symbol at pos with its next symbol.
type candidate struct {
	rank, pos, newID int32
}

type candidateHeap []candidate

func (h candidateHeap) Len() int { return len(h) }
func (h candidateHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}
func (h candidateHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *candidateHeap) Push(x any)   { *h = append(*h, x.(candidate)) }
func (h *candidateHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// tokenize appends the ids of one pre-tokenized word to dst.
func (m *bpe) tokenize(word string, dst []int) []int {
	if word == "" {
		return dst
	}
	if m.ignoreMerges {
		if id, ok := m.vocab[word]; ok {
			return append(dst, id)
		}
	}
	cacheable := len(word) <= cacheMaxWordLen
	if cacheable {
		m.mu.RLock()
		ids, ok := m.cache[word]
		m.mu.RUnlock()
		if ok {
			return append(dst, ids...)
		}
	}
	ids := m.mergeWord(word)
	if cacheable {
		m.mu.Lock()
		if len(m.cache) >= cacheMaxEntries {
			m.cache = make(map[string][]int)
		}
		m.cache[word] = ids
		m.mu.Unlock()
	}
	return append(dst, ids...)
}

// initialSymbols maps each character to its id, with byte fallback and
// (fused) unknown tokens as tokenizers' BPE::merge_word does.
func (m *bpe) initialSymbols(word string) []symbol {
	syms := make([]symbol, 0, len(word))
	add := func(id int) { syms = append(syms, symbol{id: int32(id)}) }
	pendingUnk := false
	for i, r := range word {
		size := utf8.RuneLen(r)
		if r == utf8.RuneError {
			_, size = utf8.DecodeRuneInString(word[i:])
		}
		s := word[i : i+size]
		if i > 0 && m.prefix != "" {
			s = m.prefix + s
		}
		if i+size == len(word) && m.suffix != "" {
			s += m.suffix
		}
		if id, ok := m.vocab[s]; ok {
			if pendingUnk {
				add(m.unkID)
				pendingUnk = false
			}
			add(id)
			continue
		}
		if m.byteFallback && m.hasByteIDs(s) {
			// tokenizers adds the byte tokens without flushing a pending unk
			for j := 0; j < len(s); j++ {
				add(m.byteIDs[s[j]])
			}
			continue
		}
		if m.unkID >= 0 {
			if pendingUnk && !m.fuseUnk {
				add(m.unkID)
			}
			pendingUnk = true
		}
	}
	if pendingUnk {
		add(m.unkID)
	}
	for i := range syms {
		syms[i].prev = int32(i - 1)
		syms[i].next = int32(i + 1)
	}
	if n := len(syms); n > 0 {
		syms[n-1].next = -1
	}
	return syms
}

func (m *bpe) hasByteIDs(s string) bool {
	for j := 0; j < len(s); j++ {
		if m.byteIDs[s[j]] < 0 {
			return false
		}
	}
	return true
}

// mergeWord applies the merges lowest rank first (leftmost on ties), using a
// priority queue of candidate pairs and skipping stale entries.
func (m *bpe) mergeWord(word string) []int {
	syms := m.initialSymbols(word)
	h := make(candidateHeap, 0, len(syms))
	for i := 0; i+1 < len(syms); i++ {
		if mg, ok := m.merges[pairKey(int(syms[i].id), int(syms[i+1].id))]; ok {
			h = append(h, candidate{mg.rank, int32(i), mg.newID})
		}
	}
	heap.Init(&h)
	for h.Len() > 0 {
		top := heap.Pop(&h).(candidate)
		cur := &syms[top.pos]
		if cur.removed || cur.next < 0 {
			continue
		}
		right := syms[cur.next]
		mg, ok := m.merges[pairKey(int(cur.id), int(right.id))]
		if !ok || mg.newID != top.newID {
			continue // stale: one side changed since this pair was queued
		}
		cur.id = top.newID
		syms[cur.next].removed = true
		cur.next = right.next
		if right.next >= 0 {
			syms[right.next].prev = top.pos
		}
		if cur.prev >= 0 {
			if mg, ok := m.merges[pairKey(int(syms[cur.prev].id), int(cur.id))]; ok {
				heap.Push(&h, candidate{mg.rank, cur.prev, mg.newID})
			}
		}
		if cur.next >= 0 {
			if mg, ok := m.merges[pairKey(int(cur.id), int(syms[cur.next].id))]; ok {
				heap.Push(&h, candidate{mg.rank, top.pos, mg.newID})
			}
		}
	}
	ids := make([]int, 0, len(syms))
	for _, s := range syms {
		if !s.removed {
			ids = append(ids, int(s.id))
		}
	}
	return ids
}
