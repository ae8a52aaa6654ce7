// The official openai JavaScript client against a running `namm serve`.
// usage: node scripts/openai-client/test.mjs BASE_URL [API_KEY]
//   e.g. node scripts/openai-client/test.mjs http://127.0.0.1:8080 (run by .ci/run)
import assert from "node:assert/strict";
import OpenAI from "openai";

const [base, apiKey] = process.argv.slice(2);
if (!base) {
  console.error("usage: node test.mjs BASE_URL [API_KEY]");
  process.exit(2);
}
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: apiKey ?? "unused", maxRetries: 0 });

const models = await client.models.list();
assert.equal(models.data.length, 1);
const model = models.data[0].id;

// A completion, greedy.
const c = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 8, temperature: 0 });
assert.equal(typeof c.choices[0].text, "string");
assert.equal(c.choices[0].finish_reason, "length");
assert.equal(c.usage.completion_tokens, 8);

// A chat completion with a seed, whole and streamed: the same text.
const messages = [{ role: "user", content: "Tell me a story." }];
const params = { model, messages, max_tokens: 12, temperature: 0.8, top_p: 0.95, seed: 7 };
const whole = await client.chat.completions.create(params);
assert.equal(whole.choices[0].message.role, "assistant");
let streamed = "";
let finish = null;
let usage = null;
const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const ch of chunk.choices) {
    streamed += ch.delta.content ?? "";
    finish = ch.finish_reason ?? finish;
  }
}
assert.equal(streamed, whole.choices[0].message.content);
assert.equal(finish, "length");
assert.equal(usage.completion_tokens, 12);

// The extensions: a memory policy and budget per request; KV usage back.
const h2o = await client.completions.create({ model, prompt: "word ".repeat(60), max_tokens: 4, memory: "h2o", kv_budget: 32 });
assert.ok(h2o.usage.kv_tokens_peak <= 33, `kv_tokens_peak ${h2o.usage.kv_tokens_peak}`);

// Log probabilities.
const lp = await client.chat.completions.create({ model, messages, max_tokens: 3, temperature: 0, logprobs: true, top_logprobs: 2 });
assert.equal(lp.choices[0].logprobs.content.length, 3);
assert.equal(lp.choices[0].logprobs.content[0].top_logprobs.length, 2);

// Errors arrive as the client's typed errors, naming the field.
await assert.rejects(
  client.completions.create({ model, prompt: "x", max_tokens: -1 }),
  (err) => err instanceof OpenAI.BadRequestError && err.status === 400 && err.param === "max_tokens",
);
await assert.rejects(
  client.completions.create({ model, prompt: "x", memory: "nonsense" }),
  (err) => err instanceof OpenAI.BadRequestError && err.param === "memory",
);
console.log(`openai client: all checks passed against ${base} (${model})`);
