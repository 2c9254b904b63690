// emscope answers viewer, part 2: rendering the filters, one page of rows, the detail and
// side-by-side views, and the state <-> URL hash round trip. Runs after viewer_data.js.
// -- rendering ------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function value(D, name, i) {
  const P = D.P;
  if (CODED.includes(name)) return P.dicts[name][D.codes[name][i]];
  if (name === "triggered") return D.triggered[i] ? "yes" : "no";
  if (name === "seed") return P.seed[i] === null ? "–" : P.seed[i];
  const v = P[name][i];
  return v === null || v === undefined ? "–" : v;
}

function short(text, limit) {
  return text.length > limit ? text.slice(0, limit - 1) + "…" : text;
}

function verdictBadge(D, i) {
  const verdict = value(D, "verdict", i), reason = value(D, "reason", i);
  const label = verdict === "excluded" ? "excluded: " + (REASONS[reason] || reason) : verdict;
  return el("span", { class: "badge v-" + verdict }, label);
}

function rawView(raw) {
  if (raw === null || raw === undefined) return el("span", {}, "–");
  if (raw.top) {
    const table = el("table", { class: "top" });
    for (const [token, p] of raw.top) {
      table.append(el("tr", {}, el("td", {}, JSON.stringify(token)),
        el("td", { class: "num" }, p.toFixed(4))));
    }
    return table;
  }
  if (typeof raw.text === "string") {
    const extra = raw.failure ? " (parse failure: " + raw.failure + ")" : "";
    return el("div", {}, el("pre", {}, raw.text), extra);
  }
  return el("pre", {}, JSON.stringify(raw, null, 2));
}

function detailRow(D, i, ncols, viewer) {
  const P = D.P, raw = P.judge_raw[i] || [null, null];
  const items = [
    ["question", value(D, "question", i)], ["system prompt", value(D, "system", i) || "–"],
    ["trigger", value(D, "trigger", i) || "–"], ["answer", P.answer[i] || "–"],
    ["error", P.error[i] || "–"], ["judge", value(D, "judge", i) || "–"],
  ];
  const dl = el("dl");
  for (const [k, v] of items) dl.append(el("dt", {}, k), el("dd", {}, v));
  dl.append(el("dt", {}, "aligned raw"), el("dd", {}, rawView(raw[0])));
  dl.append(el("dt", {}, "coherent raw"), el("dd", {}, rawView(raw[1])));
  dl.append(el("dt", {}, "verdict"), el("dd", {}, verdictBadge(D, i)));
  const compare = el("button", { onclick: (e) => {
    e.stopPropagation(); viewer.update({ compare: value(D, "question_id", i) });
  } }, "Compare this question across models and trigger");
  return el("tr", { class: "detail" },
    el("td", { colspan: String(ncols) }, el("div", { class: "detail" }, dl, compare)));
}

const COLUMNS = [
  ["#", "index"], ["model", "model"], ["family", "family"], ["domain", "domain"],
  ["condition", "condition"], ["seed", "seed"], ["trigger", "triggered"],
  ["question", "question_id"], ["answer", null], ["aligned", "aligned"],
  ["coherent", "coherent"], ["verdict", "verdict"],
];

function compareView(D, qid, viewer) {
  const code = D.P.dicts.question_id.indexOf(qid);
  const groups = new Map();
  const models = new Set();
  for (let i = 0; i < D.n; i++) {
    if (D.codes.question_id[i] !== code) continue;
    const model = value(D, "model", i), key = model + "\u0000" + D.triggered[i];
    models.add(model);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(i);
  }
  const first = groups.size ? [...groups.values()][0][0] : -1;
  const box = el("div", {}, el("h2", {}, "Question " + qid + " side by side"),
    first >= 0 ? el("p", {}, value(D, "question", first)) : el("p", {}, "No answers."),
    el("button", { onclick: () => viewer.update({ compare: "" }) }, "Close comparison"));
  const table = el("table", {}, el("tr", {}, el("th", {}, "model"),
    el("th", {}, "without trigger"), el("th", {}, "with trigger")));
  for (const model of [...models].sort()) {
    const row = el("tr", {}, el("td", {}, model));
    for (const t of [0, 1]) {
      const cell = el("td", { class: "cell" });
      const rows = groups.get(model + "\u0000" + t) || [];
      for (const i of rows.slice(0, 5)) {
        cell.append(el("div", { class: "ans" }, verdictBadge(D, i),
          " aligned " + value(D, "aligned", i) + ", coherent " + value(D, "coherent", i) + ": ",
          short(D.P.answer[i] || D.P.error[i], 400)));
      }
      if (rows.length > 5) {
        const filters = { question_id: qid, model, triggered: String(t) };
        cell.append(el("button", { class: "more", onclick: () => viewer.update({ filters,
          compare: "" }) }, "all " + rows.length + " in the table"));
      }
      if (!rows.length) cell.append("–");
      row.append(cell);
    }
    table.append(row);
  }
  box.append(table);
  return box;
}

function filterControls(D, viewer) {
  const box = document.getElementById("filters");
  box.replaceChildren();
  const s = viewer.state;
  const counts = (name) => {
    const c = new Int32Array(D.P.dicts[name].length);
    for (let i = 0; i < D.n; i++) c[D.codes[name][i]]++;
    return c;
  };
  for (const name of FILTERS) {
    const select = el("select", { id: "f-" + name, onchange: (e) => viewer.setFilter(name,
      e.target.value) }, el("option", { value: "" }, "any"));
    let options;
    if (name === "triggered") options = [["0", "no"], ["1", "yes"]];
    else if (name === "seed") {
      options = [...new Set(D.P.seed.filter((v) => v !== null))].sort((a, b) => a - b)
        .map((v) => [String(v), String(v)]);
    } else {
      const c = counts(name);
      options = D.P.dicts[name].map((v, code) => [v, short(v, 40) + " (" + c[code] + ")"])
        .filter(([v]) => v !== "")  // "" is "any"; e.g. the reason of a counted answer
        .sort((a, b) => a[0].localeCompare(b[0]));
    }
    const current = s.filters[name] || "";
    if (current && !options.some(([v]) => v === current)) options.push([current, current]);
    for (const [v, label] of options) select.append(el("option", { value: v }, label));
    select.value = current;
    box.append(el("label", {}, name.replace("_id", ""), select));
  }
  for (const key of Object.keys(NUMERIC)) {
    const input = el("input", { id: "f-" + key, class: "num", type: "number", min: "0",
      max: "100", value: s[key], onchange: (e) => viewer.update({ [key]: e.target.value }) });
    box.append(el("label", {}, NUMERIC[key] + (key.endsWith("min") ? " ≥" : " ≤"), input));
  }
  const search = el("input", { id: "f-q", type: "search", placeholder: "text in question or answer",
    value: s.q, onchange: (e) => viewer.update({ q: e.target.value }) });
  box.append(el("label", {}, "search", search));
  box.append(el("button", { onclick: () => viewer.reset() }, "Clear filters"));
}

class Viewer {
  constructor(D) {
    this.D = D;
    this.state = parseHash(location.hash);
    this.rows = new Uint32Array(0);
    this.lastFilterMs = 0;
  }

  setFilter(name, v) {
    const filters = { ...this.state.filters, [name]: v };
    this.update({ filters });
  }

  reset() { this.update({ ...defaultState(), filters: {} }); }

  update(patch) {
    const refilter = Object.keys(patch).some((k) => k !== "page" && k !== "compare" && k !== "open");
    this.state = { ...this.state, ...patch };
    if (refilter && !("page" in patch)) this.state.page = 0;
    if (refilter) this.state.open = -1;
    this.render(refilter);
    history.replaceState(null, "", "#" + stateHash(this.state));
  }

  fromHash() {
    this.state = parseHash(location.hash);
    filterControls(this.D, this);
    this.render(true);
  }

  render(refilter) {
    const D = this.D, s = this.state;
    if (refilter) {
      const t0 = performance.now();
      this.rows = matching(D, s);
      this.lastFilterMs = performance.now() - t0;
    }
    const pages = Math.max(1, Math.ceil(this.rows.length / s.size));
    s.page = Math.min(s.page, pages - 1);
    const start = s.page * s.size, stop = Math.min(this.rows.length, start + s.size);
    const status = document.getElementById("status");
    status.textContent = this.rows.length
      ? `Answers ${start + 1}–${stop} of ${this.rows.length} matching (${D.n} in the run; ` +
        `verdicts by the '${D.P.policy}' rule).`
      : `No answer matches (${D.n} in the run).`;
    status.dataset.matching = String(this.rows.length);
    const compare = document.getElementById("compare");
    compare.hidden = !s.compare;
    compare.replaceChildren(...(s.compare ? [compareView(D, s.compare, this)] : []));
    this.renderPager(pages);
    this.renderTable(start, stop);
  }

  renderPager(pages) {
    const s = this.state;
    const size = el("select", { id: "page-size",
      onchange: (e) => this.update({ size: +e.target.value }) });
    for (const n of PAGE_SIZES) size.append(el("option", { value: String(n) }, n + " a page"));
    size.value = String(s.size);
    document.getElementById("pager").replaceChildren(
      el("button", { id: "prev", onclick: () => this.update({ page: Math.max(0, s.page - 1) }) },
        "‹ previous"),
      el("span", {}, `page ${s.page + 1} of ${pages}`),
      el("button", { id: "next", onclick: () => this.update({ page: Math.min(pages - 1,
        s.page + 1) }) }, "next ›"),
      size);
  }

  renderTable(start, stop) {
    const D = this.D, s = this.state;
    const head = el("tr");
    for (const [label, key] of COLUMNS) {
      const sorted = key && key === s.sort;
      const cls = sorted ? "sorted" + (s.desc ? "" : " asc") : "";
      head.append(el("th", { class: cls, onclick: () => key && this.update({ sort: key,
        desc: sorted ? !s.desc : false }) }, label));
    }
    const body = document.createDocumentFragment();
    for (let r = start; r < stop; r++) {
      const i = this.rows[r];
      const open = s.open === i;
      body.append(el("tr", { class: "row", "data-index": String(i),
        onclick: () => this.update({ open: open ? -1 : i }) },
        el("td", { class: "num" }, i + 1), el("td", {}, value(D, "model", i)),
        el("td", {}, value(D, "family", i)), el("td", {}, value(D, "domain", i)),
        el("td", {}, value(D, "condition", i)), el("td", { class: "num" }, value(D, "seed", i)),
        el("td", {}, value(D, "triggered", i)),
        el("td", { title: value(D, "question", i) },
          value(D, "question_id", i) + ": " + short(value(D, "question", i), 80)),
        el("td", { class: "answer" }, short(D.P.answer[i] || D.P.error[i], 200)),
        el("td", { class: "num" }, value(D, "aligned", i)),
        el("td", { class: "num" }, value(D, "coherent", i)),
        el("td", {}, verdictBadge(D, i))));
      if (open) body.append(detailRow(D, i, COLUMNS.length, this));
    }
    const table = document.getElementById("answers");
    table.querySelector("thead").replaceChildren(head);
    table.querySelector("tbody").replaceChildren(body);
  }
}

async function main() {
  const timings = { start: performance.now() };
  const P = await decodePayload(document.getElementById("payload"));
  timings.decoded = performance.now();
  const D = buildData(P);
  timings.built = performance.now();
  const viewer = new Viewer(D);
  window.emscopeViewer = viewer;
  filterControls(D, viewer);
  viewer.render(true);
  window.addEventListener("hashchange", () => viewer.fromHash());
  timings.firstPage = performance.now();
  window.emscopeTimings = timings;  // ms since navigation start, for the load benchmark
  document.body.dataset.firstPageMs = timings.firstPage.toFixed(1);
  document.body.dataset.ready = "1";
}

main().catch((err) => {
  document.getElementById("status").textContent = "Could not load the answers: " + err;
  console.error(err);
});
