#!/usr/bin/env python3
"""Render chat templates x conversations into chat/testdata/golden.json.

usage: chat_template_golden.py [--engine transformers|jinja2] [--testdata DIR] [--out FILE]

--engine transformers (the default, on the GPU machine) renders with
transformers' own tokenizer.apply_chat_template; --engine jinja2 renders with
Jinja2 configured the way transformers configures it
(transformers/utils/chat_template_utils.py: ImmutableSandboxedEnvironment,
trim_blocks, lstrip_blocks, loopcontrols, tojson = json.dumps with
ensure_ascii=False, raise_exception, strftime_now), for machines without
transformers. The output records which engine made it.

Inputs (committed): DIR/templates.json (name -> template file, bos/eos
tokens), DIR/conversations.json (template kwargs, and per conversation its
messages, tools, add_generation_prompt), DIR/snippets.json (small templates
that exercise one Jinja feature each, rendered over its messages). A template
that raises gives {"error": message} instead of {"text": ...}.
"""
import argparse
import json
import os
import sys


def jinja2_renderer():
    import jinja2
    import jinja2.ext
    from datetime import datetime
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now

    def render(source, spec, conv, kwargs):
        special = {k: spec[k] for k in ("bos_token", "eos_token") if spec.get(k) is not None}
        t = env.from_string(source)
        return t.render(messages=conv["messages"], tools=conv.get("tools"), documents=None,
                        add_generation_prompt=conv.get("add_generation_prompt", True), **special, **kwargs)
    return render, "jinja2 " + jinja2.__version__ + " configured as transformers configures it"


def transformers_renderer():
    import transformers
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    def render(source, spec, conv, kwargs):
        special = {k: spec[k] for k in ("bos_token", "eos_token") if spec.get(k) is not None}
        vocab = {"<unk>": 0}
        for v in special.values():
            vocab.setdefault(v, len(vocab))
        tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")),
                                      unk_token="<unk>", **special)
        tok.chat_template = source
        return tok.apply_chat_template(conv["messages"], tools=conv.get("tools"), tokenize=False,
                                       add_generation_prompt=conv.get("add_generation_prompt", True), **kwargs)
    return render, "transformers " + transformers.__version__ + " apply_chat_template"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", choices=["transformers", "jinja2"], default="transformers")
    ap.add_argument("--testdata", default=os.path.join(here, "..", "..", "chat", "testdata"))
    ap.add_argument("--out", default=None, help="default: TESTDATA/golden.json")
    a = ap.parse_args()
    templates = json.load(open(os.path.join(a.testdata, "templates.json"), encoding="utf-8"))
    convs = json.load(open(os.path.join(a.testdata, "conversations.json"), encoding="utf-8"))
    render, engine = transformers_renderer() if a.engine == "transformers" else jinja2_renderer()
    cases = []
    for name in sorted(templates):
        spec = templates[name]
        with open(os.path.join(a.testdata, spec["file"]), encoding="utf-8", newline="") as f:
            source = f.read()
        for cname in sorted(convs["conversations"]):
            conv = convs["conversations"][cname]
            case = {"template": name, "conversation": cname}
            try:
                case["text"] = render(source, spec, conv, convs.get("kwargs", {}))
            except Exception as e:  # a template's raise_exception, reported as data
                case["error"] = str(e)
            cases.append(case)
    snip = json.load(open(os.path.join(a.testdata, "snippets.json"), encoding="utf-8"))
    snippets = []
    for source in snip["snippets"]:
        case = {"source": source}
        try:
            case["text"] = render(source, {}, {"messages": snip["messages"]}, {})
        except Exception as e:
            case["error"] = str(e)
        snippets.append(case)
    out = a.out or os.path.join(a.testdata, "golden.json")
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"engine": engine, "cases": cases, "snippets": snippets}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, out)
    print(f"{out}: {len(cases)} cases, {len(snippets)} snippets ({engine})", file=sys.stderr)


if __name__ == "__main__":
    main()
