#!/usr/bin/env python3
"""Regenerates data/dict.txt.gz and data/hmm.txt.gz from an installed jieba
0.42.1 (Debian: apt-get install python3-jieba; MIT licence, (c) Sun Junyi),
and testdata/cases.json: jieba.cut(s, cut_all=False, HMM=True) of test
sentences, the reference the Go port is tested against.
dict.txt.gz: "word freq" lines of jieba's dict.txt (tags dropped).
hmm.txt.gz: "start STATE logp", "trans FROM TO logp", "emit STATE CHAR logp"
lines of jieba.finalseg's tables, floats in repr (round-trip exact).
Run: /usr/bin/python3 make_data.py"""
import gzip, json, os, sys
import jieba
from jieba.finalseg import prob_start, prob_trans, prob_emit  # noqa

here = os.path.dirname(os.path.abspath(__file__))

def write_gz(name, lines):
    path = os.path.join(here, "data", name)
    with open(path + ".tmp", "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0, filename="") as f:
            f.write("".join(lines).encode("utf-8"))
    os.replace(path + ".tmp", path)

src = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")
dict_lines = []
with open(src, encoding="utf-8") as f:
    for line in f:
        parts = line.strip().split(" ")
        dict_lines.append("%s %s\n" % (parts[0], parts[1]))
write_gz("dict.txt.gz", dict_lines)

from jieba.finalseg import start_P, trans_P, emit_P
hmm = []
for s in sorted(start_P):
    hmm.append("start %s %r\n" % (s, start_P[s]))
for a in sorted(trans_P):
    for b in sorted(trans_P[a]):
        hmm.append("trans %s %s %r\n" % (a, b, trans_P[a][b]))
for s in sorted(emit_P):
    for ch in sorted(emit_P[s]):
        hmm.append("emit %s %s %r\n" % (s, ch, emit_P[s][ch]))
write_gz("hmm.txt.gz", hmm)

cases = [
    "我来到北京清华大学", "他来到了网易杭研大厦", "小明硕士毕业于中国科学院计算所，后在日本京都大学深造",
    "会议讨论了产品的设计方案和预算问题。", "这是一个测试 test 123，版本3.5.2发布了！",
    "段落12的摘要", "  空格\t和\r\n换行  ", "遥控器的设计需要考虑用户体验和成本控制",
    "C++和Python3都是编程语言，#标签 & 50%的人", "李小福是创新办主任也是云计算方面的专家",
    "结过婚的和尚未结过婚的", "工信处女干事每月经过下属科室都要亲口交代24口交换机等技术性器件的安装工作",
    "永和服装饰品有限公司", "我们中出了一个叛徒", "２０２３年１２月", "ＡＢＣ全角字母",
    "「引号」与『书名』，还有——破折号…", "深度学习模型在长文本上的记忆管理非常重要",
    "王小二在北京买了一套房子，花了三百万元。", "abc.def-ghi_jkl%mno", "",
]
here_td = os.path.join(here, "testdata")
os.makedirs(here_td, exist_ok=True)
out = [{"text": c, "words": list(jieba.cut(c, cut_all=False, HMM=True))} for c in cases]
with open(os.path.join(here_td, "cases.json.tmp"), "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, indent=0)
os.replace(os.path.join(here_td, "cases.json.tmp"), os.path.join(here_td, "cases.json"))
print("ok", len(dict_lines), "dict lines,", len(hmm), "hmm lines,", len(out), "cases")
