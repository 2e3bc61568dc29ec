// expq dashboard: one page script for every view. Data comes from the JSON API of `expq ui`;
// charts use the plotly.js bundle the `plotly` Python package ships, loaded only by views with charts.
"use strict";

const TOKEN_KEY = "expq-token";
const QUEUE_POLL_MS = 1500;
const TABLE_POLL_MS = 3000;
const LOG_POLL_MS = 1000;
const LOG_KEEP = 1 << 20; // characters of a followed log kept on the page
const DEFAULT_SELECTED = 20;
const TABLE_ROWS = 200; // rows drawn at first: a 1,000-run table costs the browser more than its data
// Colours that can be told apart: tab10 up to 10 lines; beyond, 30 more from tab20/tab20b/tab20c, each
// the one farthest from all before it (20 lines: no two closer than 60 in RGB). The same list as
// expq.experiment.plot.palette.
const TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const MANY = TAB10.concat([
  "#9edae5", "#dbdb8d", "#393b79", "#d6616b", "#74c476", "#6baed6", "#f7b6d2", "#c49c94", "#fdae6b", "#a1d99b",
  "#637939", "#c7e9c0", "#8ca252", "#5254a3", "#9e9ac8", "#b5cf6b", "#a55194", "#dadaeb", "#e6550d", "#ff9896",
  "#7b4173", "#fd8d3c", "#c5b0d5", "#6b6ecf", "#636363", "#fdd0a2", "#31a354", "#969696", "#bd9e39", "#ad494a"]);
const DASHES = ["solid", "dash", "dot", "dashdot"];

// ---------------------------------------------------------------------------------------------
// small helpers

const state = { info: { read_only: true, root: "" }, timers: [] };

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
function canAct() { return !state.info.read_only && token() !== ""; }

// replaceChildren would show a null as the text "null": views pass null for what they leave out
function put(node, ...kids) { node.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined)); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

async function post(url) {
  const response = await fetch(url, { method: "POST", headers: { "X-Expq-Token": token() } });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function toast(text) {
  const box = document.getElementById("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 5000);
}

function every(ms, fn) {
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try { await fn(); setLive(true); } catch (err) { setLive(false); console.error(err); } finally { busy = false; }
  };
  state.timers.push(setInterval(tick, ms));
  return tick();
}

function setLive(on) { document.getElementById("live").className = on ? "on" : ""; }

function fmtNum(v) {
  if (v === null || v === undefined) return "-";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  if (Array.isArray(v)) return v.map(fmtNum).join(",");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function fmtDuration(s) {
  if (s === null || s === undefined) return "-";
  if (s < 10) return s.toFixed(1) + "s";
  s = Math.floor(s);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
  return Math.floor(s / 86400) + "d" + String(Math.floor(s % 86400 / 3600)).padStart(2, "0") + "h";
}

function escapeHover(text) { return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }

function fmtTime(t) { return t ? new Date(t * 1000).toLocaleString() : "-"; }
function badge(s) { return el("span", { class: "badge " + s, text: s }); }

// Natural order: numbers inside names compare by value (2 before 10, 0.02 before 0.1).
function naturalKey(text) {
  return String(text).split(/(\d+(?:\.\d+)?)/).filter((p) => p !== "").map((p) => (/^\d/.test(p) ? [1, parseFloat(p)] : [0, p]));
}
function naturalCompare(a, b) {
  const x = naturalKey(a), y = naturalKey(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i][0] !== y[i][0]) return x[i][0] - y[i][0];
    if (x[i][1] < y[i][1]) return -1;
    if (x[i][1] > y[i][1]) return 1;
  }
  return x.length - y.length;
}
function valueCompare(a, b) {
  const missA = a === null || a === undefined, missB = b === null || b === undefined;
  if (missA || missB) return missA - missB;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return naturalCompare(fmtNum(a), fmtNum(b));
}

function table(id, headers, rows) {
  const body = rows.length ? rows : [el("tr", { class: "empty" }, el("td", { colspan: headers.length, class: "muted", text: "none" }))];
  return el("table", { id }, el("thead", {}, el("tr", {}, headers.map((h) => el("th", { text: h })))), el("tbody", {}, body));
}

function runUrl(experiment, run) {
  return `/experiments/${encodeURIComponent(experiment)}/runs/${run.split("/").map(encodeURIComponent).join("/")}`;
}

function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!loadPlotly.promise) {
    loadPlotly.promise = new Promise((resolve, reject) => {
      const script = el("script", { src: "/static/plotly.min.js" });
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => reject(new Error("could not load plotly.js"));
      document.head.append(script);
    });
  }
  return loadPlotly.promise;
}

// A log that follows its file: each poll asks only for the bytes after the last offset.
function followLog(pre, url) {
  let offset = null;
  return every(LOG_POLL_MS, async () => {
    const sep = url.includes("?") ? "&" : "?";
    const data = await getJSON(url + (offset === null ? "" : `${sep}offset=${offset}`));
    if (data.missing && offset === null) { pre.textContent = "(no output yet)"; pre.dataset.offset = "0"; return; }
    if (offset !== null && data.start < offset) { pre.textContent = ""; } // the file started over
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    if (offset === null) pre.textContent = data.start > 0 ? `(… first ${data.start} bytes not shown)\n` : "";
    if (data.text) {
      if (pre.textContent === "(no output yet)") pre.textContent = "";
      pre.textContent = (pre.textContent + data.text).slice(-LOG_KEEP);
    }
    offset = data.offset;
    pre.dataset.offset = String(offset);
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  });
}

function logTabs(names, urlOf) {
  const pre = el("pre", { class: "log", id: "log" });
  const tabs = el("div", { class: "tabs" });
  let stop = null;
  const open = (name) => {
    for (const b of tabs.children) b.classList.toggle("active", b.dataset.name === name);
    if (stop) stop();
    pre.textContent = "";
    pre.dataset.stream = name;
    const before = state.timers.length;
    followLog(pre, urlOf(name));
    const timer = state.timers[before];
    stop = () => clearInterval(timer);
  };
  for (const name of names) tabs.append(el("button", { "data-name": name, text: name, onclick: () => open(name) }));
  if (names.length) open(names[0]);
  return el("div", {}, tabs, pre);
}

// ---------------------------------------------------------------------------------------------
// queue view

function actionButton(job, verb) {
  if (!canAct()) return null;
  return el("button", {
    class: verb === "cancel" ? "action danger" : "action", "data-job": job.id, "data-verb": verb, text: verb,
    onclick: async (event) => {
      event.target.disabled = true;
      try { const r = await post(`/api/jobs/${job.id}/${verb}`); toast(`job ${job.id}: ${r.outcome}`); } catch (err) { toast(`job ${job.id}: ${err.message}`); }
    },
  });
}

function jobName(job) { return el("a", { href: `/jobs/${job.id}` }, `${job.experiment}/${job.name}`); }
function exitText(job) { return job.signal ? String(job.signal) : job.exit_code === null ? "-" : String(job.exit_code); }

async function queueView(main) {
  const counts = el("div", { id: "counts" });
  const sections = el("div");
  put(main, el("h1", { text: "Queue" }), counts,
    state.info.read_only ? el("p", { class: "muted", text: "read-only dashboard: no actions" })
      : !token() ? el("p", { class: "muted", text: "to cancel or retry, open the URL with the token that `expq ui` printed" }) : null,
    sections);
  await every(QUEUE_POLL_MS, async () => {
    const q = await getJSON("/api/queue");
    put(counts, ...["pending", "running", "done", "failed", "cancelled"].map((s) =>
      el("div", { class: "count", "data-state": s }, el("b", { text: (q.counts[s] || 0).toLocaleString() }), badge(s))));
    const now = Date.now() / 1000;
    const running = q.running.map((j) => el("tr", { "data-job": j.id },
      el("td", {}, el("a", { href: `/jobs/${j.id}` }, String(j.id))), el("td", {}, jobName(j)),
      el("td", { class: "num", text: fmtDuration(j.started_at ? now - j.started_at : j.elapsed) }),
      el("td", { text: j.gpus.length ? j.gpus.join(",") : "-" }), el("td", { text: j.host || "-" }),
      el("td", { class: "num", text: j.attempts }), el("td", {}, el("a", { href: `/jobs/${j.id}` }, "log"), " ", actionButton(j, "cancel"))));
    const pending = q.pending.map((j, i) => el("tr", { "data-job": j.id },
      el("td", { class: "num", text: i + 1 }), el("td", {}, el("a", { href: `/jobs/${j.id}` }, String(j.id))), el("td", {}, jobName(j)),
      el("td", { class: "num", text: j.priority }), el("td", { text: j.gpus_requested || "-" }),
      el("td", { class: "reason", text: j.reason || "next free slot" }), el("td", {}, actionButton(j, "cancel"))));
    const finished = q.finished.map((j) => el("tr", { "data-job": j.id },
      el("td", {}, el("a", { href: `/jobs/${j.id}` }, String(j.id))), el("td", {}, jobName(j)), el("td", {}, badge(j.state)),
      el("td", { text: exitText(j) }), el("td", { text: j.reason || "" }), el("td", { class: "num", text: fmtDuration(j.duration) }),
      el("td", { text: fmtTime(j.finished_at) }),
      el("td", {}, ["failed", "cancelled"].includes(j.state) ? actionButton(j, "retry") : null)));
    put(sections, 
      el("section", { class: "card" }, el("h2", { text: `Running (${q.running.length})` }),
        table("running", ["id", "experiment/name", "elapsed", "GPUs", "host", "attempt", ""], running)),
      el("section", { class: "card" }, el("h2", { text: `Pending, in the order they will run (${q.counts.pending || 0})` }),
        table("pending", ["#", "id", "experiment/name", "priority", "GPUs", "waiting for", ""], pending)),
      el("section", { class: "card" }, el("h2", { text: "Recently finished" }),
        table("finished", ["id", "experiment/name", "state", "exit", "reason", "duration", "finished", ""], finished)),
      q.hidden ? el("p", { class: "muted", text: `${q.hidden.toLocaleString()} more jobs not shown (expq status --all)` }) : null,
      q.exists ? null : el("p", { class: "muted", text: "no queue in this root yet: expq submit creates it" }));
  });
}

// ---------------------------------------------------------------------------------------------
// job view

async function jobView(main, id) {
  const data = await getJSON(`/api/jobs/${id}`);
  const job = data.job;
  const runDir = data.spec.run_dir.split("/");
  const runLink = runDir[0] === "experiments" && runDir.length >= 3 ? runUrl(runDir[1], runDir.slice(2).join("/")) : null;
  const status = el("span", { id: "job-state" }, badge(job.state));
  put(main, 
    el("h1", {}, `job ${job.id}: ${job.experiment}/${job.name} `, status, " ",
      ["pending", "running"].includes(job.state) ? actionButton(job, "cancel") : null,
      ["failed", "cancelled"].includes(job.state) ? actionButton(job, "retry") : null),
    el("section", { class: "card" }, el("dl", { class: "kv" },
      ...[["command", job.command.join(" ")], ["config", JSON.stringify(job.config)], ["GPUs", job.gpus.join(",") || "-"],
        ["host", job.host || "-"], ["attempts", job.attempts], ["exit", exitText(job)], ["reason", job.reason || "-"],
        ["submitted", fmtTime(job.submitted_at)], ["started", fmtTime(job.started_at)], ["finished", fmtTime(job.finished_at)],
        ["run directory", job.run_dir]].flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])),
      runLink ? el("p", {}, el("a", { href: runLink }, "open the run (config, metrics, files)")) : null),
    el("section", { class: "card" }, el("h2", { text: "Output (follows the log as it grows)" }),
      logTabs(["stdout", "stderr"], (name) => `/api/jobs/${id}/log?stream=${name}`)));
  every(QUEUE_POLL_MS * 2, async () => {
    const now = await getJSON(`/api/jobs/${id}`);
    put(status, badge(now.job.state));
  });
}

// ---------------------------------------------------------------------------------------------
// experiments list

async function experimentsView(main) {
  const body = el("tbody");
  put(main, el("h1", { text: "Experiments" }), el("section", { class: "card" },
    el("table", { id: "experiments" }, el("thead", {}, el("tr", {}, ["experiment", "runs", "states", "last change"].map((h) => el("th", { text: h })))), body)));
  await every(TABLE_POLL_MS, async () => {
    const list = await getJSON("/api/experiments");
    put(body, ...list.map((e) => el("tr", { "data-experiment": e.name },
      el("td", {}, el("a", { href: `/experiments/${encodeURIComponent(e.name)}` }, e.name)), el("td", { class: "num", text: e.runs }),
      el("td", {}, Object.entries(e.states).flatMap(([s, n]) => [el("span", { class: "badge " + (s.includes(" ") ? "unknown" : s), text: `${n} ${s}` }), " "])),
      el("td", { text: fmtTime(e.updated) }))));
    if (!list.length) body.append(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "no experiments yet" })));
  });
}

// ---------------------------------------------------------------------------------------------
// experiment view: runs table and charts

function experimentView(main, name) {
  loadPlotly(); // 4.6 MB of script: start now, in parallel with the table
  const view = {
    name, table: null, selected: null, sort: null, filter: "", stateFilter: "", configFilter: {},
    x: "step", logY: false, smoothing: 0, groupBy: "", band: "minmax", seriesCache: new Map(), showAll: false,
  };
  const constants = el("p", { class: "constants", id: "constants" });
  const controls = el("div", { class: "controls", id: "table-controls" });
  const tableBox = el("div", { class: "scroll" });
  const chartControls = el("div", { class: "controls", id: "chart-controls" });
  const charts = el("div", { class: "charts", id: "charts" });
  put(main, el("h1", {}, el("a", { href: "/experiments" }, "experiments"), " / ", name),
    el("section", { class: "card" }, constants, controls, tableBox), el("section", { class: "card" }, chartControls, charts));

  const visibleRows = () => {
    const t = view.table;
    const text = view.filter.toLowerCase();
    let rows = t.rows.filter((r) => (!view.stateFilter || r.state === view.stateFilter)
      && Object.entries(view.configFilter).every(([k, v]) => v === "" || fmtNum(r[k]) === v)
      && (!text || t.shown.some((c) => fmtNum(r[c]).toLowerCase().includes(text))));
    if (view.sort) {
      const { column, desc } = view.sort;
      rows = rows.slice().sort((a, b) => {
        const missA = a[column] === null || a[column] === undefined, missB = b[column] === null || b[column] === undefined;
        if (missA || missB) return missA - missB;
        const c = column === "run" ? naturalCompare(a.run, b.run) : valueCompare(a[column], b[column]);
        return desc ? -c : c;
      });
    }
    return rows;
  };

  let controlsFor = "";
  const drawControls = () => {
    const t = view.table;
    const states = [...new Set(t.rows.map((r) => r.state))];
    // rebuilt only when the choices change, so a live refresh never steals the focus of the filter box
    const signature = JSON.stringify([states, t.config_keys.map((k) => [...new Set(t.rows.map((r) => fmtNum(r[k])))])]);
    if (signature === controlsFor) return;
    controlsFor = signature;
    const configSelects = t.config_keys.map((key) => {
      const values = [...new Set(t.rows.map((r) => fmtNum(r[key])))].sort(naturalCompare);
      const select = el("select", { "data-key": key, class: "config-filter", onchange: (e) => { view.configFilter[key] = e.target.value; drawTable(); } },
        el("option", { value: "", text: "all" }), values.map((v) => el("option", { value: v, text: v, selected: view.configFilter[key] === v })));
      return el("label", {}, key.replace(/^config\./, ""), select);
    });
    put(controls, 
      el("label", {}, "filter", el("input", { type: "text", id: "filter", value: view.filter, placeholder: "text in any column",
        oninput: (e) => { view.filter = e.target.value; drawTable(); } })),
      el("label", {}, "state", el("select", { id: "state-filter", onchange: (e) => { view.stateFilter = e.target.value; drawTable(); } },
        el("option", { value: "", text: "all" }), states.map((s) => el("option", { value: s, text: s, selected: view.stateFilter === s })))),
      ...configSelects,
      el("button", { id: "select-all", text: "select shown", onclick: () => { for (const r of visibleRows()) view.selected.add(r.run); drawTable(); drawCharts(); } }),
      el("button", { id: "select-none", text: "select none", onclick: () => { view.selected.clear(); drawTable(); drawCharts(); } }));
    const keys = t.config_keys.map((k) => k.replace(/^config\./, ""));
    put(chartControls, 
      el("label", {}, "x", el("select", { id: "x-axis", onchange: (e) => { view.x = e.target.value; drawCharts(); } },
        el("option", { value: "step", text: "step", selected: view.x === "step" }), el("option", { value: "time", text: "wall time (s)", selected: view.x === "time" }))),
      el("label", {}, el("input", { type: "checkbox", id: "log-y", checked: view.logY, onchange: (e) => { view.logY = e.target.checked; drawCharts(); } }), "log y"),
      el("label", {}, "smoothing", el("input", { type: "range", id: "smoothing", min: 0, max: 0.99, step: 0.01, value: view.smoothing,
        oninput: (e) => { view.smoothing = parseFloat(e.target.value); drawCharts(); } })),
      el("label", {}, "group by", el("select", { id: "group-by", onchange: (e) => { view.groupBy = e.target.value; drawCharts(); } },
        el("option", { value: "", text: "none (one line per run)" }), keys.map((k) => el("option", { value: k, text: k, selected: view.groupBy === k })))),
      el("label", {}, "band", el("select", { id: "band", onchange: (e) => { view.band = e.target.value; drawCharts(); } },
        el("option", { value: "minmax", text: "min–max" }), el("option", { value: "std", text: "± std" }))),
      el("span", { class: "muted", id: "selection-count" }));
  };

  const drawTable = () => {
    const t = view.table;
    constants.textContent = Object.keys(t.constant).length
      ? "same in every run: " + Object.entries(t.constant).map(([k, v]) => `${k.replace(/^config\./, "")}=${fmtNum(v)}`).join(", ") : "";
    const head = el("tr", {}, el("th", {}), t.shown.map((c) => el("th", {
      class: "sortable" + (view.sort && view.sort.column === c ? (view.sort.desc ? " sorted-desc" : " sorted-asc") : ""), "data-column": c,
      text: c.replace(/^config\./, ""), onclick: () => {
        view.sort = view.sort && view.sort.column === c ? { column: c, desc: !view.sort.desc } : { column: c, desc: false };
        drawTable();
      } })));
    const visible = visibleRows();
    const shown = view.showAll ? visible : visible.slice(0, TABLE_ROWS);
    const rows = shown.map((r) => el("tr", { "data-run": r.run, class: view.selected.has(r.run) ? "selected" : "" },
      el("td", {}, el("input", { type: "checkbox", class: "select-run", checked: view.selected.has(r.run), onchange: (e) => {
        if (e.target.checked) view.selected.add(r.run); else view.selected.delete(r.run);
        e.target.closest("tr").classList.toggle("selected", e.target.checked);
        drawCharts();
      } })),
      t.shown.map((c) => c === "run" ? el("td", {}, el("a", { href: runUrl(view.name, r.run) }, r.run))
        : c === "state" ? el("td", {}, badge(r.state))
        : c === "duration" ? el("td", { class: "num", "data-column": c, text: fmtDuration(r[c]) })
        : el("td", { class: typeof r[c] === "number" ? "num" : "", "data-column": c, text: fmtNum(r[c]) }))));
    put(tableBox, el("table", { id: "runs" }, el("thead", {}, head), el("tbody", {}, rows)),
      shown.length < visible.length ? el("p", { class: "muted", id: "more-rows" }, `${visible.length - shown.length} more runs not drawn (filter or sort to bring them up) `,
        el("button", { text: "show all", onclick: () => { view.showAll = true; drawTable(); } })) : null);
    document.getElementById("selection-count").textContent = `${view.selected.size} runs selected` + (view.table.partial ? " (still reading metrics…)" : "");
  };

  // Points of one run's metric, cached; a refresh asks the server again (it reads only what was appended).
  const fetchSeries = async (metric, runs, refresh) => {
    const key = (run) => `${metric}\u0000${view.x}\u0000${run}`;
    const missing = runs.filter((r) => refresh || !view.seriesCache.has(key(r)));
    if (missing.length) {
      const params = new URLSearchParams({ metric, x: view.x });
      for (const r of missing) params.append("run", r);
      const data = await getJSON(`/api/experiments/${encodeURIComponent(view.name)}/series?${params}`);
      for (const r of missing) view.seriesCache.set(key(r), { x: [], y: [] });
      for (const line of data.lines) view.seriesCache.set(key(line.run), line);
    }
    return runs.map((r) => ({ run: r, ...view.seriesCache.get(key(r)) }));
  };

  const smooth = (ys) => {
    const a = view.smoothing;
    if (!a) return ys;
    const out = [];
    let last = null, weight = 0;
    for (const y of ys) {
      if (y === null) { out.push(null); continue; }
      last = last === null ? 0 : last;
      last = a * last + (1 - a) * y;
      weight = a * weight + (1 - a);
      out.push(last / weight); // debiased exponential moving average, as TensorBoard draws it
    }
    return out;
  };

  const hoverConfig = (run) => {
    const row = view.table.rows.find((r) => r.run === run) || {};
    return view.table.config_keys.map((k) => `${k.replace(/^config\./, "")}=${fmtNum(row[k])}`).join(" ");
  };

  const groupTraces = (lines, metricIndex) => {
    const key = "config." + view.groupBy;
    const groups = new Map();
    for (const line of lines) {
      const row = view.table.rows.find((r) => r.run === line.run) || {};
      const label = `${view.groupBy}=${fmtNum(row[key])}`;
      if (!groups.has(label)) groups.set(label, { value: row[key], lines: [] });
      groups.get(label).lines.push(line);
    }
    const ordered = [...groups.entries()].sort((a, b) => valueCompare(a[1].value, b[1].value));
    const colours = ordered.length <= 10 ? TAB10 : MANY;
    const traces = [];
    ordered.forEach(([label, group], i) => {
      const byX = new Map();
      for (const line of group.lines) {
        const ys = smooth(line.y);
        line.x.forEach((x, j) => { if (ys[j] !== null) { if (!byX.has(x)) byX.set(x, []); byX.get(x).push(ys[j]); } });
      }
      const xs = [...byX.keys()].sort((a, b) => a - b);
      const mean = [], low = [], high = [];
      for (const x of xs) {
        const v = byX.get(x);
        const m = v.reduce((s, y) => s + y, 0) / v.length;
        const sd = Math.sqrt(v.reduce((s, y) => s + (y - m) ** 2, 0) / v.length);
        mean.push(m);
        low.push(view.band === "std" ? m - sd : Math.min(...v));
        high.push(view.band === "std" ? m + sd : Math.max(...v));
      }
      const colour = colours[i % colours.length];
      const few = xs.length <= 20; // a band between a few points is hardly visible: error bars instead
      if (!few) {
        traces.push({ x: xs, y: high, mode: "lines", line: { width: 0 }, hoverinfo: "skip", showlegend: false, legendgroup: label, meta: "band", name: label + " band" });
        traces.push({ x: xs, y: low, mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: colour + "33", hoverinfo: "skip", showlegend: false, legendgroup: label, meta: "band", name: label + " band" });
      }
      traces.push({ x: xs, y: mean, mode: few ? "lines+markers" : "lines", name: `${label} (${group.lines.length} runs)`, legendgroup: label,
        meta: ["mean", `${escapeHover(label)}, mean of ${group.lines.length} runs`],
        line: { color: colour, width: 2, dash: DASHES[metricIndex % DASHES.length] },
        error_y: few ? { type: "data", symmetric: false, array: high.map((h, j) => h - mean[j]), arrayminus: low.map((l, j) => mean[j] - l), color: colour } : undefined,
        hovertemplate: "%{meta[1]}<br>%{x}: %{y:.5g}<extra></extra>" });
    });
    return traces;
  };

  const runTraces = (lines, metricIndex) => {
    const order = [...view.selected].sort(naturalCompare);
    const colours = order.length <= 10 ? TAB10 : MANY;
    return lines.filter((l) => l.x.length).map((line) => {
      const colour = colours[order.indexOf(line.run) % colours.length];
      // names and config values go in through meta, so a '%{' or '<' in them is shown, never interpreted
      return { x: line.x, y: smooth(line.y), name: line.run, mode: line.x.length <= 20 ? "lines+markers" : "lines",
        meta: ["run", `<b>${escapeHover(line.run)}</b><br>${escapeHover(hoverConfig(line.run))}`],
        line: { color: colour, width: 1.5, dash: DASHES[metricIndex % DASHES.length] },
        hovertemplate: "%{meta[1]}<br>%{x}: %{y:.5g}<extra></extra>" };
    });
  };

  let drawing = Promise.resolve();
  // refresh: ask the server again for series already cached here (a live run grew); else only missing ones
  const drawCharts = (refresh = false) => {
    drawing = drawing.then(() => drawChartsNow(refresh)).catch((err) => toast(err.message));
    return drawing;
  };
  const drawChartsNow = async (refresh) => {
    const asked = performance.now();
    const Plotly = await loadPlotly();
    const started = performance.now(); // what follows is this draw's own cost: fetch the points, draw them
    charts.dataset.plotlyMs = String(Math.round(started - asked));
    const runs = [...view.selected].sort(naturalCompare);
    document.getElementById("selection-count").textContent = `${runs.length} runs selected`;
    const metrics = view.table.metrics;
    const boxes = metrics.map((m, i) => {
      let box = charts.querySelector(`.chart[data-index="${i}"]`);
      if (!box || box.dataset.metric !== m) {
        box = el("div", { class: "chart", "data-index": i, "data-metric": m, id: `chart-${i}` });
        const old = charts.querySelector(`.chart[data-index="${i}"]`);
        if (old) old.replaceWith(box); else charts.append(box);
      }
      return box;
    });
    while (charts.children.length > metrics.length) charts.lastChild.remove();
    const all = await Promise.all(metrics.map((m) => (runs.length ? fetchSeries(m, runs, refresh) : Promise.resolve([]))));
    charts.dataset.fetchMs = String(Math.round(performance.now() - started));
    metrics.forEach((metric, i) => {
      const traces = view.groupBy ? groupTraces(all[i].filter((l) => l.x.length), i) : runTraces(all[i], i);
      const layout = {
        title: { text: metric, font: { size: 14 } }, margin: { l: 60, r: 10, t: 36, b: 44 },
        xaxis: { title: { text: view.x === "step" ? "step" : "wall time (s)" } },
        yaxis: { title: { text: metric }, type: view.logY ? "log" : "linear" },
        legend: { x: 1.02, xanchor: "left", y: 1, font: { size: 11 } }, // outside the plot area: never over the data
        hovermode: "closest", uirevision: `${metric}|${view.x}|${view.logY}`,
      };
      Plotly.react(boxes[i], traces, layout, { displaylogo: false, responsive: true });
      boxes[i].dataset.traces = String(traces.length);
    });
    charts.dataset.drawMs = String(Math.round(performance.now() - started));
    charts.dataset.drawn = String(Number(charts.dataset.drawn || 0) + 1);
  };

  let first = true;
  let lastTable = "";
  const refresh = async () => {
    const t = await getJSON(`/api/experiments/${encodeURIComponent(name)}/runs`);
    const text = JSON.stringify(t);
    if (text === lastTable) return; // nothing changed on disk: leave the page (and what the user does on it) alone
    lastTable = text;
    view.table = t;
    if (first) {
      view.selected = new Set(t.rows.slice(0, DEFAULT_SELECTED).map((r) => r.run));
      drawControls();
      drawTable();
      await drawCharts();
      first = false;
      return;
    }
    drawControls();
    drawTable();
    // live: while a selected run is still running, its charts grow (only appended bytes are read)
    if (t.rows.some((r) => view.selected.has(r.run) && r.state === "running")) await drawCharts(true);
  };
  // poll: sooner while the server is still reading metric files (a partial table), else every 3 s
  const loop = async () => {
    try { await refresh(); setLive(true); } catch (err) { setLive(false); console.error(err); }
    state.timers.push(setTimeout(loop, view.table && view.table.partial ? 1000 : TABLE_POLL_MS));
  };
  loop();
}

// ---------------------------------------------------------------------------------------------
// run view

function kvText(key, v) {
  if (typeof v === "number" && key.endsWith("_at")) return fmtTime(v);
  if (typeof v === "number" && (key === "duration" || key.endsWith("_s"))) return fmtDuration(v);
  if (typeof v === "number" && key.endsWith("_bytes")) return (v / 2 ** 20).toFixed(1) + " MiB";
  if (typeof v === "number") return String(v); // config values in full, not rounded
  return typeof v === "object" && v !== null ? JSON.stringify(v) : fmtNum(v);
}

function kv(entries) {
  return el("dl", { class: "kv" }, entries.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { "data-key": k, text: kvText(k, v) })]));
}

function flatten(obj, prefix = "") {
  const out = [];
  for (const [k, v] of Object.entries(obj || {})) {
    if (v && typeof v === "object" && !Array.isArray(v)) out.push(...flatten(v, prefix + k + "."));
    else out.push([prefix + k, v]);
  }
  return out;
}

async function runView(main, experiment, run) {
  loadPlotly();
  const q = `experiment=${encodeURIComponent(experiment)}&run=${encodeURIComponent(run)}`;
  const d = await getJSON(`/api/run?${q}`);
  const fileUrl = (path, download) => `/api/run/file?${q}&path=${encodeURIComponent(path)}${download ? "&download=1" : ""}`;
  const images = /\.(png|jpe?g|gif|svg|webp)$/i;
  const attempts = d.attempts.map((a) => el("tr", {}, el("td", { text: a.number }), el("td", {}, badge(a.outcome)), el("td", { text: a.signal || fmtNum(a.exit_code) }),
    el("td", { text: a.host }), el("td", { text: (a.gpus || []).join(",") || "-" }), el("td", { text: fmtTime(a.started_at) }),
    el("td", { class: "num", text: a.finished_at ? fmtDuration(a.finished_at - a.started_at) : "-" }), el("td", { text: a.reason || "" })));
  const files = d.files.map((f) => el("li", {}, el("a", { href: fileUrl(f, true) }, f), " ", el("a", { href: fileUrl(f, false), target: "_blank" }, "(open)"),
    images.test(f) ? el("img", { src: fileUrl(f, false), alt: f }) : null));
  const metricBoxes = Object.keys(d.metrics).map((m, i) => el("div", { class: "chart", "data-metric": m, id: `run-chart-${i}` }));
  const parent = run.includes("/") ? run.slice(0, run.lastIndexOf("/")) : null;
  put(main, 
    el("h1", {}, el("a", { href: `/experiments/${encodeURIComponent(experiment)}` }, experiment), " / ", run, " ", badge(d.state)),
    parent ? el("p", {}, "nested in ", el("a", { href: runUrl(experiment, parent) }, parent)) : null,
    el("div", { class: "grid2" },
      el("section", { class: "card", id: "config" }, el("h2", { text: "Config" }), kv(flatten(d.config))),
      el("section", { class: "card", id: "outcome" }, el("h2", { text: "Result" }),
        d.result ? kv(Object.entries(d.result).filter(([k]) => k !== "version")) : el("p", { class: "muted", text: "no result.json (not a queued job, or still running)" }),
        el("h2", { text: "Returned value" }),
        d.returned_file ? el("a", { href: fileUrl(d.returned_file, true) }, d.returned_file)
          : el("pre", { class: "returned", text: d.returned === null || d.returned === undefined ? "-" : JSON.stringify(d.returned, null, 2) }))),
    d.attempts.length ? el("section", { class: "card" }, el("h2", { text: "Attempts" }),
      table("attempts", ["#", "outcome", "exit", "host", "GPUs", "started", "duration", "reason"], attempts)) : null,
    el("section", { class: "card" }, el("h2", { text: "Metrics" }),
      table("metrics", ["metric", "last", "at step"], Object.entries(d.metrics).map(([m, v]) => el("tr", {}, el("td", { text: m }), el("td", { class: "num", text: fmtNum(v.last) }), el("td", { class: "num", text: fmtNum(v.step) })))),
      el("div", { class: "charts" }, metricBoxes)),
    el("section", { class: "card" }, el("h2", { text: "Logs" }), d.logs.length ? logTabs(d.logs, (name) => `/api/run/log?${q}&name=${name}`) : el("p", { class: "muted", text: "no logs" })),
    el("section", { class: "card files", id: "files" }, el("h2", { text: `Files (${d.files.length})` }), el("ul", {}, files)),
    d.runs.length ? el("section", { class: "card" }, el("h2", { text: "Nested runs" }), el("ul", { id: "nested" }, d.runs.map((r) => el("li", {}, el("a", { href: runUrl(experiment, r) }, r))))) : null);
  if (metricBoxes.length) {
    const Plotly = await loadPlotly();
    const metrics = Object.keys(d.metrics);
    const draw = async () => {
      for (const [i, m] of metrics.entries()) {
        const data = await getJSON(`/api/experiments/${encodeURIComponent(experiment)}/series?metric=${encodeURIComponent(m)}&run=${encodeURIComponent(run)}`);
        const line = data.lines[0] || { x: [], y: [] };
        Plotly.react(metricBoxes[i], [{ x: line.x, y: line.y, mode: line.x.length <= 20 ? "lines+markers" : "lines", name: m, line: { color: TAB10[i % 10] } }],
          { title: { text: m, font: { size: 14 } }, margin: { l: 60, r: 10, t: 36, b: 44 }, xaxis: { title: { text: "step" } }, yaxis: { title: { text: m } }, uirevision: m },
          { displaylogo: false, responsive: true });
      }
    };
    await draw();
    if (d.state === "running") every(TABLE_POLL_MS, draw);
  }
}

// ---------------------------------------------------------------------------------------------
// routing

async function main() {
  const params = new URLSearchParams(location.search);
  if (params.has("token")) {
    sessionStorage.setItem(TOKEN_KEY, params.get("token"));
    params.delete("token");
    history.replaceState(null, "", location.pathname + (params.toString() ? "?" + params : "") + location.hash);
  }
  state.info = await getJSON("/api/info");
  document.getElementById("root-path").textContent = state.info.root + (state.info.read_only ? " (read-only)" : "");
  const root = document.getElementById("main");
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  document.getElementById("nav-queue").classList.toggle("active", parts.length === 0 || parts[0] === "jobs");
  document.getElementById("nav-experiments").classList.toggle("active", parts[0] === "experiments");
  try {
    if (parts.length === 0) await queueView(root);
    else if (parts[0] === "jobs") await jobView(root, parts[1]);
    else if (parts[0] === "experiments" && parts.length === 1) await experimentsView(root);
    else if (parts[0] === "experiments" && parts.length === 2) experimentView(root, parts[1]);
    else if (parts[0] === "experiments" && parts[2] === "runs") await runView(root, parts[1], parts.slice(3).join("/"));
    document.title = "expq: " + (parts.join(" / ") || "queue");
    document.body.dataset.ready = "1";
  } catch (err) {
    put(root, el("p", { class: "error", text: err.message }));
  }
}

main();
