// The memory inspector: runs a prompt under one or two memory policies
// through POST /v1/inspect and draws, as the events stream in, what each
// policy keeps and evicts (format: docs/serving.md, "The memory inspector").
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const KEPT = [0x1e, 0x3a, 0x5f];
const EARLY = [0xfd, 0xe6, 0x8a];
const LATE = [0xb9, 0x1c, 0x1c];

let info = null; // GET /v1/policies

function apiHeaders() {
  const h = { "Content-Type": "application/json" };
  const key = $("#api-key").value.trim();
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

function setStatus(text, isError) {
  const s = $("#form-status");
  s.textContent = text;
  s.classList.toggle("error", !!isError);
}

async function loadPolicies() {
  const res = await fetch("/v1/policies", { headers: apiHeaders() });
  if (res.status === 401) {
    $("#api-key-box").hidden = false;
    setStatus("This server needs an API key: enter it, then Run.", true);
    return false;
  }
  if (!res.ok) throw new Error("GET /v1/policies: " + res.status);
  info = await res.json();
  $("#model").textContent = info.model;
  $("#model-facts").textContent = `· ${info.layers} layers · context ${info.max_model_len} · server default memory ${info.memory}`;
  for (const [id, def] of [["#policy-a", "full"], ["#policy-b", "streaming"]]) {
    const fs = $(id);
    const sel = $(".p-name", fs);
    sel.textContent = "";
    // The server's --memory may name a NAMM file, which requests may not.
    const dflt = document.createElement("option");
    dflt.value = "";
    dflt.textContent = `default: ${info.memory}`;
    sel.appendChild(dflt);
    for (const p of info.policies) {
      const o = document.createElement("option");
      o.value = p.name;
      o.textContent = p.name + (p.needs_budget ? " (budget)" : "");
      sel.appendChild(o);
    }
    sel.value = info.policies.some(p => p.name === def) ? def : info.policies[0].name;
    if (def !== "full") $(".p-budget", fs).value = 32;
    sel.addEventListener("change", () => showHelp(fs));
    showHelp(fs);
  }
  return true;
}

function showHelp(fs) {
  const p = info.policies.find(p => p.name === $(".p-name", fs).value);
  $(".p-help", fs).textContent = p ? p.help : `the policy namm serve was started with (--memory ${info.memory}); options do not apply`;
  $(".p-budget", fs).required = !!(p && p.needs_budget);
}

function policySpec(fs) {
  const name = $(".p-name", fs).value;
  const opts = $(".p-opts", fs).value.trim();
  const body = name ? { memory: opts ? name + ":" + opts : name } : {};
  const b = parseInt($(".p-budget", fs).value, 10);
  if (b > 0) body.kv_budget = b;
  return body;
}

// Run: one panel per policy, both streams at once.
async function run(ev) {
  ev.preventDefault();
  if (!info && !(await loadPolicies().catch(e => (setStatus(e.message, true), false)))) return;
  const prompt = $("#prompt").value;
  if (!prompt.trim()) { setStatus("prompt: give some text to continue", true); $("#prompt").focus(); return; }
  const maxTokens = parseInt($("#max-tokens").value, 10) || 48;
  const sets = [$("#policy-a")];
  if ($("#compare").checked) sets.push($("#policy-b"));
  const results = $("#results");
  results.textContent = "";
  $("#run").disabled = true;
  setStatus("running…");
  const runs = sets.map(fs => {
    const panel = new Panel(results);
    const body = Object.assign({ prompt, max_tokens: maxTokens }, policySpec(fs));
    panel.title((body.memory || "server default") + (body.kv_budget ? ` · budget ${body.kv_budget}` : ""));
    return panel.stream(body);
  });
  const outcomes = await Promise.all(runs);
  $("#run").disabled = false;
  const failed = outcomes.filter(o => !o).length;
  setStatus(failed ? `${failed} of ${outcomes.length} runs failed` : "done", failed > 0);
  document.body.dataset.runs = String((parseInt(document.body.dataset.runs || "0", 10)) + 1);
}

class Panel {
  constructor(parent) {
    this.el = $("#panel-template").content.firstElementChild.cloneNode(true);
    parent.appendChild(this.el);
    this.tokens = [];   // {pos, id, text, gen}
    this.steps = [];    // {step, start, tokens, kv}
    this.gone = [];     // [layer] Map pos -> heads gone
    this.at = [];       // [layer] Map pos -> step the last head evicted it
    this.layers = 0;
    this.kvHeads = 1;
    this.cursor = { l: 0, p: 0 };
    this.pending = false;
    const grid = $(".p-grid", this.el);
    grid.addEventListener("mousemove", e => this.hover(e));
    grid.addEventListener("keydown", e => this.key(e));
    grid.addEventListener("focus", () => {
      if (!this.geom) return;
      this.focused = true;
      this.describe(this.cursor.l, this.cursor.p);
      this.drawGrid();
      this.mark(this.cursor.p, true);
    });
    grid.addEventListener("blur", () => { this.focused = false; this.drawGrid(); });
  }

  title(t) { $(".p-title", this.el).textContent = t; }

  state(s, label) {
    this.el.dataset.state = s;
    $(".p-state", this.el).textContent = label || s;
  }

  async stream(body) {
    this.state("running");
    let res;
    try {
      res = await fetch("/v1/inspect", { method: "POST", headers: apiHeaders(), body: JSON.stringify(body) });
    } catch (e) {
      return this.fail("the server did not answer: " + e.message);
    }
    if (!res.ok) {
      let msg = res.status + " " + res.statusText;
      try { msg = (await res.json()).error.message; } catch (_) { /* not JSON */ }
      if (res.status === 401) $("#api-key-box").hidden = false;
      return this.fail(msg);
    }
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    let ended = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const chunk = buf.slice(0, i);
        buf = buf.slice(i + 2);
        for (const line of chunk.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const ev = JSON.parse(line.slice(6));
          if (ev.type === "error") return this.fail(ev.error.message);
          ended = this.event(ev) || ended;
        }
      }
    }
    if (!ended) return this.fail("the stream ended early");
    return true;
  }

  fail(msg) {
    this.state("error", "failed");
    const a = $(".p-answer", this.el);
    a.classList.add("error-text");
    a.textContent = msg;
    return false;
  }

  event(ev) {
    switch (ev.type) {
      case "start":
        this.layers = ev.layers;
        this.kvHeads = ev.kv_heads;
        this.title(ev.memory);
        for (let l = 0; l < ev.layers; l++) { this.gone.push(new Map()); this.at.push(new Map()); }
        this.tokens = ev.prompt.map(t => ({ pos: t.pos, text: t.text, gen: false }));
        this.promptLen = ev.prompt.length;
        break;
      case "step":
        this.steps.push({ step: ev.step, phase: ev.phase, start: ev.start, tokens: ev.tokens, kv: ev.kv });
        for (const e of ev.evicted || []) {
          const gone = this.gone[e.layer], at = this.at[e.layer];
          for (const p of e.positions) {
            const n = e.head === undefined ? this.kvHeads : (gone.get(p) || 0) + 1;
            gone.set(p, n);
            if (n >= this.kvHeads) at.set(p, ev.step);
          }
        }
        break;
      case "token":
        this.tokens.push({ pos: ev.pos, text: ev.text, gen: true });
        $(".p-answer", this.el).textContent += ev.piece || "";
        break;
      case "end":
        this.summary = ev;
        this.el.dataset.summaryEvicted = String(ev.evicted);
        $(".p-answer", this.el).textContent = ev.text;
        this.state("done", `done · ${ev.finish_reason}`);
        this.draw();
        return true;
    }
    this.schedule();
    return false;
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  // processed is the number of positions the model ran through.
  processed() {
    const s = this.steps[this.steps.length - 1];
    return s ? s.start + s.tokens : 0;
  }

  draw() {
    this.drawStats();
    // The token view is a span per token: on long prompts redraw it a few
    // times a second, not at every frame.
    const now = performance.now();
    if (this.summary || !this.tokensDrawn || now - this.tokensDrawn > 300) {
      this.tokensDrawn = now;
      this.drawTokens();
    }
    this.drawGrid();
    this.drawPlot();
  }

  drawStats() {
    const n = this.steps.length;
    if (!n) return;
    let sum = 0, sumFull = 0, peak = 0;
    for (const s of this.steps) {
      const mean = s.kv.reduce((a, b) => a + b, 0) / s.kv.length;
      sum += mean;
      peak = Math.max(peak, mean);
      sumFull += s.start + s.tokens;
    }
    const sm = this.summary;
    const mean = sm ? sm.kv_mean : sum / n, fullMean = sm ? sm.full_kv_mean : sumFull / n;
    const pk = sm ? sm.kv_peak : peak, fullPeak = sm ? sm.full_kv_peak : this.processed();
    const pct = (a, b) => b > 0 ? ` <span class="pct">(${Math.round(100 * a / b)}%)</span>` : "";
    let evicted = 0;
    for (const at of this.at) evicted += at.size;
    const el = $(".p-stats", this.el);
    el.innerHTML =
      `<span>KV mean <b>${mean.toFixed(1)}</b> of <b>${fullMean.toFixed(1)}</b> full${pct(mean, fullMean)}</span>` +
      `<span>KV peak <b>${pk.toFixed(1)}</b> of <b>${fullPeak.toFixed(1)}</b> full${pct(pk, fullPeak)}</span>` +
      `<span>steps <b>${n}</b></span><span>evicted <b class="p-evicted">${evicted}</b> (layer × token)</span>`;
    this.el.dataset.evicted = String(evicted);
  }

  keptLayers(pos) {
    let k = 0;
    for (const at of this.at) if (!at.has(pos)) k++;
    return k;
  }

  drawTokens() {
    const box = $(".p-tokens", this.el);
    const processed = this.processed();
    const frag = document.createDocumentFragment();
    this.spans = new Map();
    for (const t of this.tokens) {
      const s = document.createElement("span");
      this.spans.set(t.pos, s);
      s.textContent = t.text;
      if (t.pos < processed) {
        const k = this.keptLayers(t.pos), f = k / Math.max(this.layers, 1);
        s.title = `position ${t.pos}: kept by ${k} of ${this.layers} layers`;
        if (k === 0) s.className = "gone";
        else s.style.background = `hsl(213, 70%, ${Math.round(97 - 13 * f)}%)`;
      }
      if (t.gen) s.classList.add("gen");
      if (t.pos === this.marked) s.classList.add("cur");
      frag.appendChild(s);
    }
    box.textContent = "";
    box.appendChild(frag);
  }

  // The grid: one row per layer, one column per position processed.
  drawGrid() {
    const cv = $(".p-grid", this.el);
    const n = this.processed();
    if (!n || !this.layers) return;
    const width = cv.clientWidth || 600;
    const cw = Math.max(1, Math.floor(width / n));
    const rh = Math.max(3, Math.min(14, Math.floor(150 / this.layers)));
    cv.width = n * cw;
    cv.height = this.layers * rh;
    cv.style.height = cv.height + "px";
    const ctx = cv.getContext("2d");
    const img = ctx.createImageData(cv.width, cv.height);
    const last = Math.max(this.steps.length - 1, 1);
    let evicted = 0, kept = 0;
    for (let l = 0; l < this.layers; l++) {
      const at = this.at[l];
      for (let p = 0; p < n; p++) {
        let c = KEPT;
        const s = at.get(p);
        if (s !== undefined) {
          evicted++;
          const f = s / last;
          c = [0, 1, 2].map(i => Math.round(EARLY[i] + f * (LATE[i] - EARLY[i])));
        } else kept++;
        for (let y = l * rh; y < (l + 1) * rh - (rh > 4 ? 1 : 0); y++) {
          for (let x = p * cw; x < (p + 1) * cw; x++) {
            const o = (y * cv.width + x) * 4;
            img.data[o] = c[0]; img.data[o + 1] = c[1]; img.data[o + 2] = c[2]; img.data[o + 3] = 255;
          }
        }
      }
    }
    ctx.putImageData(img, 0, 0);
    if (this.focused) {
      ctx.strokeStyle = "#2563eb";
      ctx.lineWidth = 2;
      ctx.strokeRect(this.cursor.p * cw, this.cursor.l * rh, Math.max(cw, 2), rh);
    }
    cv.dataset.evicted = String(evicted);
    cv.dataset.kept = String(kept);
    cv.dataset.layers = String(this.layers);
    cv.dataset.positions = String(n);
    this.geom = { cw, rh, n };
    $(".p-rows", this.el).textContent = `rows: layers 0–${this.layers - 1} · columns: positions 0–${n - 1}`;
  }

  hover(e) {
    if (!this.geom) return;
    const cv = e.currentTarget, r = cv.getBoundingClientRect();
    const x = (e.clientX - r.left) * cv.width / r.width, y = (e.clientY - r.top) * cv.height / r.height;
    const p = Math.floor(x / this.geom.cw), l = Math.floor(y / this.geom.rh);
    if (p >= 0 && p < this.geom.n && l >= 0 && l < this.layers) {
      this.describe(l, p);
      this.mark(p, false);
    }
  }

  // mark outlines the token at position p in the token view.
  mark(p, scroll) {
    const old = this.spans && this.spans.get(this.marked);
    if (old) old.classList.remove("cur");
    this.marked = p;
    const s = this.spans && this.spans.get(p);
    if (!s) return;
    s.classList.add("cur");
    if (scroll) {
      const box = s.parentElement, top = s.offsetTop - box.offsetTop;
      if (top < box.scrollTop || top > box.scrollTop + box.clientHeight - s.offsetHeight) box.scrollTop = top - box.clientHeight / 2;
    }
  }

  key(e) {
    if (!this.geom) return;
    const c = this.cursor, big = e.shiftKey ? 10 : 1;
    const moves = { ArrowLeft: [0, -big], ArrowRight: [0, big], ArrowUp: [-1, 0], ArrowDown: [1, 0], Home: [0, -1e9], End: [0, 1e9] };
    const m = moves[e.key];
    if (!m) return;
    e.preventDefault();
    c.l = Math.min(this.layers - 1, Math.max(0, c.l + m[0]));
    c.p = Math.min(this.geom.n - 1, Math.max(0, c.p + m[1]));
    this.focused = true;
    this.describe(c.l, c.p);
    this.drawGrid();
    this.mark(c.p, true);
  }

  describe(l, p) {
    const t = this.tokens.find(t => t.pos === p);
    const text = t ? JSON.stringify(t.text) : "";
    const s = this.at[l] && this.at[l].get(p);
    let what;
    if (s === undefined) {
      const part = this.gone[l] && this.gone[l].get(p);
      what = part ? `kept by ${this.kvHeads - part} of ${this.kvHeads} KV heads` : "kept";
    } else {
      const st = this.steps[s];
      what = `evicted at step ${s}` + (st ? ` (${st.phase}, positions ${st.start}–${st.start + st.tokens - 1})` : "");
    }
    $(".p-cell", this.el).textContent = `layer ${l} · position ${p} ${text} · ${what}`;
  }

  drawPlot() {
    const svg = $(".p-plot", this.el);
    const W = Math.max(200, Math.round(svg.clientWidth || 600)), H = 140, padL = 36, padB = 16, padT = 6, padR = 8;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const steps = this.steps;
    if (!steps.length) return;
    const top = Math.max(1, this.processed());
    const x = i => padL + (steps.length === 1 ? 0 : i * (W - padL - padR) / (steps.length - 1));
    const y = v => H - padB - v * (H - padB - padT) / top;
    const ns = "http://www.w3.org/2000/svg";
    const parts = [];
    parts.push(`<line x1="${padL}" y1="${H - padB}" x2="${W - padR}" y2="${H - padB}" stroke="#cbd2d9"/>`);
    parts.push(`<line x1="${padL}" y1="${padT}" x2="${padL}" y2="${H - padB}" stroke="#cbd2d9"/>`);
    parts.push(`<text x="${padL - 4}" y="${padT + 8}" text-anchor="end">${top}</text>`);
    parts.push(`<text x="${padL - 4}" y="${H - padB}" text-anchor="end">0</text>`);
    parts.push(`<text x="${W - padR}" y="${H - 3}" text-anchor="end">step ${steps.length - 1}</text>`);
    parts.push(`<text x="${padL}" y="${H - 3}">step 0</text>`);
    const full = steps.map((s, i) => `${x(i).toFixed(1)},${y(s.start + s.tokens).toFixed(1)}`).join(" ");
    parts.push(`<polyline points="${full}" fill="none" stroke="#9aa5b1" stroke-width="1.5" stroke-dasharray="4 3"/>`);
    for (let l = 0; l < this.layers; l++) {
      const pts = steps.map((s, i) => `${x(i).toFixed(1)},${y(s.kv[l]).toFixed(1)}`).join(" ");
      const light = this.layers === 1 ? 35 : Math.round(25 + 45 * l / (this.layers - 1));
      parts.push(`<polyline points="${pts}" fill="none" stroke="hsl(213, 60%, ${light}%)" stroke-width="1.3"><title>layer ${l}</title></polyline>`);
    }
    svg.innerHTML = parts.join("");
    void ns;
  }
}

async function loadFile(e) {
  const f = e.target.files[0];
  if (!f) return;
  $("#prompt").value = await f.text();
  setStatus(`loaded ${f.name} (${f.size} bytes)`);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#run-form").addEventListener("submit", run);
  $("#prompt").addEventListener("keydown", e => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); $("#run-form").requestSubmit(); }
  });
  $("#prompt-file").addEventListener("change", loadFile);
  $("#compare").addEventListener("change", e => {
    for (const el of $("#policy-b").querySelectorAll("select, input:not(#compare)")) el.disabled = !e.target.checked;
  });
  loadPolicies().catch(e => setStatus(e.message, true));
});
