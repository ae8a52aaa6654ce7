// Writes testdata/tokenizers/<name>/golden_js.json: the ids that the
// independent JS port of tokenizers (@huggingface/tokenizers, pure JS) gives
// for every text of testdata/tokenizers/texts.json, with and without special
// tokens, and the decoded text.
//
// Usage (from the repository root; keep node_modules outside the repository):
//   mkdir -p /tmp/tokjs && (cd /tmp/tokjs && npm install @huggingface/tokenizers@0.2.0)
//   NODE_PATH=/tmp/tokjs/node_modules node scripts/tokenizer_golden_js.mjs [name ...]
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(path.join(process.env.NODE_PATH || ".", "x.js"));
const modPath = require.resolve("@huggingface/tokenizers");
const { Tokenizer } = await import(modPath.replace(/\.cjs$/, ".mjs"));
const version = JSON.parse(fs.readFileSync(path.join(path.dirname(modPath), "..", "package.json"))).version;

const root = "testdata/tokenizers";
const texts = JSON.parse(fs.readFileSync(path.join(root, "texts.json"), "utf8"));
let names = process.argv.slice(2);
if (names.length === 0) {
  names = fs.readdirSync(root).filter((n) => fs.existsSync(path.join(root, n, "tokenizer.json")));
}
for (const name of names) {
  const json = JSON.parse(fs.readFileSync(path.join(root, name, "tokenizer.json"), "utf8"));
  // An empty config: tokenizer.json alone decides, as in Python's Tokenizer.from_file.
  const tok = new Tokenizer(json, {});
  // tokenizers.js refuses to decode an empty list; tokenizers returns "".
  const decode = (ids, skip) => (ids.length === 0 ? "" : tok.decode(ids, { skip_special_tokens: skip }));
  const cases = texts.map((text) => {
    const ids = tok.encode(text, { add_special_tokens: false }).ids;
    const idsSpecial = tok.encode(text, { add_special_tokens: true }).ids;
    return {
      text,
      ids,
      ids_special: idsSpecial,
      decoded: decode(ids, false),
      decoded_skip_special: decode(idsSpecial, true),
    };
  });
  const out = { generator: `@huggingface/tokenizers@${version} (scripts/tokenizer_golden_js.mjs)`, cases };
  fs.writeFileSync(path.join(root, name, "golden_js.json"), JSON.stringify(out, null, 1) + "\n");
  console.log(`${name}: ${cases.length} cases`);
}
