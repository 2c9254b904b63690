// emscope answers viewer, part 1: decoding the payload, the URL-hash state, filtering and sorting.
// Filtering runs over typed arrays of integer codes and scores; only one page is ever rendered.
// State lives in the URL hash (answers.html#model=m&triggered=1&verdict=misaligned), so the
// report's table cells link straight to their answers.
"use strict";

const CODED = ["model", "family", "domain", "condition", "question_id", "question", "verdict", "status",
  "reason", "trigger", "system", "judge"];
const FILTERS = ["model", "family", "domain", "condition", "seed", "triggered", "verdict",
  "status", "reason", "question_id"];
const NUMERIC = { amin: "aligned", amax: "aligned", cmin: "coherent", cmax: "coherent" };
const SORTS = ["index", "model", "family", "domain", "condition", "seed", "triggered",
  "question_id", "aligned", "coherent", "verdict", "reason"];
const REASONS = {
  failed: "generation failed", no_score: "no alignment score", refusal: "judge: refusal",
  code: "judge: code", judge_error: "judge error", coherent_none: "no coherence score",
  incoherent: "incoherent", dropped_question: "question dropped (too few coherent answers)",
};
const PAGE_SIZES = [25, 50, 100, 250];

async function decodePayload(node) {
  const text = node.textContent;
  if (node.dataset.encoding !== "gzip-base64") return JSON.parse(text);
  const binary = atob(text.trim());
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return JSON.parse(await new Response(stream).text());
}

function buildData(P) {
  const n = P.n;
  const D = { P, n, codes: {}, rank: {}, aligned: new Float64Array(n),
    coherent: new Float64Array(n), seed: new Float64Array(n), triggered: new Uint8Array(n) };
  for (const name of CODED) {
    D.codes[name] = Int32Array.from(P.codes[name]);
    const order = P.dicts[name].map((v, i) => i)
      .sort((a, b) => P.dicts[name][a].localeCompare(P.dicts[name][b]));
    const rank = new Int32Array(order.length);
    order.forEach((code, r) => { rank[code] = r; });
    D.rank[name] = rank;
  }
  for (let i = 0; i < n; i++) {
    D.aligned[i] = P.aligned[i] === null ? NaN : P.aligned[i];
    D.coherent[i] = P.coherent[i] === null ? NaN : P.coherent[i];
    D.seed[i] = P.seed[i] === null ? NaN : P.seed[i];
    D.triggered[i] = P.triggered[i];
  }
  D.haystack = null;  // lower-cased question + answer, built on the first text search
  return D;
}

function defaultState() {
  return { filters: {}, q: "", amin: "", amax: "", cmin: "", cmax: "", sort: "index",
    desc: false, page: 0, size: 50, compare: "", open: -1 };
}

function parseHash(hash) {
  const s = defaultState();
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  for (const [key, value] of params) {
    if (FILTERS.includes(key)) s.filters[key] = value;
    else if (key in NUMERIC || key === "q" || key === "compare") s[key] = value;
    else if (key === "sort" && SORTS.includes(value)) s.sort = value;
    else if (key === "desc") s.desc = value === "1";
    else if (key === "page") s.page = Math.max(0, parseInt(value, 10) || 0);
    else if (key === "size" && PAGE_SIZES.includes(parseInt(value, 10))) s.size = +value;
  }
  return s;
}

function stateHash(s) {
  const params = new URLSearchParams();
  for (const key of FILTERS) if (s.filters[key]) params.set(key, s.filters[key]);
  for (const key of ["q", ...Object.keys(NUMERIC), "compare"]) if (s[key]) params.set(key, s[key]);
  if (s.sort !== "index") params.set("sort", s.sort);
  if (s.desc) params.set("desc", "1");
  if (s.page) params.set("page", String(s.page));
  if (s.size !== 50) params.set("size", String(s.size));
  return params.toString();
}

// -- filtering and sorting ------------------------------------------------------------------

function codeSet(D, name, value) {
  const dict = D.P.dicts[name];
  return new Set(value.split(",").map((v) => dict.indexOf(v)));
}

function matching(D, s) {
  const tests = [];
  for (const [name, value] of Object.entries(s.filters)) {
    if (!value) continue;
    if (name === "triggered") {
      const want = value === "1" || value === "true" ? 1 : 0;
      tests.push((i) => D.triggered[i] === want);
    } else if (name === "seed") {
      const seeds = new Set(value.split(",").map(Number));
      tests.push((i) => seeds.has(D.seed[i]));
    } else {
      const codes = D.codes[name], wanted = codeSet(D, name, value);
      if (wanted.size === 1) {
        const only = [...wanted][0];
        tests.push((i) => codes[i] === only);
      } else tests.push((i) => wanted.has(codes[i]));
    }
  }
  for (const [key, column] of Object.entries(NUMERIC)) {
    if (s[key] === "" || isNaN(parseFloat(s[key]))) continue;
    const bound = parseFloat(s[key]), values = D[column];
    tests.push(key.endsWith("min") ? (i) => values[i] >= bound : (i) => values[i] <= bound);
  }
  if (s.q) {
    if (!D.haystack) {
      const Q = D.P.dicts.question, qc = D.codes.question;
      D.haystack = D.P.answer.map((a, i) => (Q[qc[i]] + "\n" + a).toLowerCase());
    }
    const needle = s.q.toLowerCase();
    tests.push((i) => D.haystack[i].includes(needle));
  }
  const out = new Uint32Array(D.n);
  let k = 0;
  outer: for (let i = 0; i < D.n; i++) {
    for (let t = 0; t < tests.length; t++) if (!tests[t](i)) continue outer;
    out[k++] = i;
  }
  const rows = out.slice(0, k);
  if (s.sort !== "index" || s.desc) sortRows(D, rows, s.sort, s.desc);
  return rows;
}

function sortKey(D, name) {
  if (name === "index") return null;
  if (name === "aligned" || name === "coherent" || name === "seed") return D[name];
  if (name === "triggered") return D.triggered;
  const rank = D.rank[name], codes = D.codes[name];
  const keys = new Float64Array(D.n);
  for (let i = 0; i < D.n; i++) keys[i] = rank[codes[i]];
  return keys;
}

function sortRows(D, rows, name, desc) {
  const keys = sortKey(D, name), sign = desc ? -1 : 1;
  rows.sort((a, b) => {
    if (keys) {
      const x = keys[a], y = keys[b];
      const xn = x !== x, yn = y !== y;  // NaN (no score) always last
      if (xn !== yn) return xn ? 1 : -1;
      if (!xn && x !== y) return (x < y ? -1 : 1) * sign;
    }
    return (a - b) * (keys ? 1 : sign);
  });
}

