#!/usr/bin/env python3
"""Writes difflib.json: difflib.SequenceMatcher(None, a, b).ratio() and the
fuzz.ratio value (fuzzywuzzy 0.18 without python-Levenshtein, re-stated with
the standard library) for a few hundred string pairs. Standard library only;
deterministic (seeded). Run: python3 testdata/make_difflib.py"""
import difflib, json, random, os

rng = random.Random(20250101)

def fuzz_ratio(s1, s2):
    # fuzzywuzzy.fuzz.ratio: check_for_equivalence, check_empty_string, then
    # utils.intr(100 * SequenceMatcher(None, s1, s2).ratio()), intr = int(round(x)).
    if s1 == s2:
        return 100
    if len(s1) == 0 or len(s2) == 0:
        return 0
    return int(round(100 * difflib.SequenceMatcher(None, s1, s2).ratio()))

def rand_str(alpha, n):
    return "".join(rng.choice(alpha) for _ in range(n))

def mutate(s, k):
    s = list(s)
    for _ in range(k):
        op = rng.randrange(3)
        p = rng.randrange(len(s) + 1)
        if op == 0:
            s.insert(p, rng.choice("abcxyz (){};=._"))
        elif op == 1 and s:
            del s[min(p, len(s) - 1)]
        elif s:
            s[min(p, len(s) - 1)] = rng.choice("qwerty01")
    return "".join(s)

code = [
    "    return self.model.forward(x, mask=mask)",
    "for (int i = 0; i < n; i++) {",
    "public static void main(String[] args) {",
    "        if key not in self._cache:",
    "x = np.zeros((batch, seq_len, dim), dtype=np.float32)",
    "}",
    "import torch.nn.functional as F",
    "self.assertEqual(result, expected)",
]
pairs = [("", ""), ("a", ""), ("", "b"), ("abc", "abc"), ("abcd", "bcde"),
         ("qabxcd", "abycdf"), ("private Thread currentThread;", "private volatile Thread currentThread;")]
for c in code:
    for c2 in code:
        pairs.append((c, c2))
    pairs.append((c, mutate(c, 3)))
    pairs.append((mutate(c, 5), c))
for _ in range(120):
    a = rand_str("abcd", rng.randrange(0, 40))
    pairs.append((a, mutate(a, rng.randrange(1, 8)) if a else rand_str("abcd", 5)))
for _ in range(60):
    pairs.append((rand_str("ab", rng.randrange(1, 30)), rand_str("ab", rng.randrange(1, 30))))
# autojunk: b of 200+ elements where some characters are popular (> 1% + 1).
for _ in range(60):
    n = rng.randrange(190, 420)
    a = rand_str("abcdefghij  ", n)
    pairs.append((a, mutate(a, rng.randrange(5, 60))))
    pairs.append((rand_str("xyzab ", rng.randrange(50, 300)), rand_str("abcdefghijklmnopqrstuvwxyz ", n)))
# unicode
uni = "中文字符测试段落会议总结日本語のテキストé ü ß😀"
for _ in range(40):
    a = rand_str(uni, rng.randrange(1, 60))
    pairs.append((a, mutate(a, 4)))
pairs.append(("x" * 300, "x" * 250 + "y" * 50))
pairs.append(("ab" * 150, "ba" * 160))

out = [{"a": a, "b": b, "ratio": difflib.SequenceMatcher(None, a, b).ratio(),
        "blocks": [list(m) for m in difflib.SequenceMatcher(None, a, b).get_matching_blocks()],
        "fuzz": fuzz_ratio(a, b)} for a, b in pairs]
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "difflib.json")
tmp = path + ".tmp"
with open(tmp, "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, indent=0)
os.replace(tmp, path)
print(len(out), "pairs ->", path)
