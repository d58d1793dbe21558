// Segmenta's personalize dashboard: asks for an admin key once, fetches /v1/dashboard/...,
// draws it. Plain DOM and Plotly; text from the server is only ever set as textContent.
"use strict";

(function () {
  const KEY_STORAGE = "segmenta.personalize.key";
  const ALL = "*";
  const PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac"];
  const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"] };
  // A fresh object per axis: Plotly writes its own state into the layout it is given.
  const grid = (extra) => Object.assign({ gridcolor: "#eef0f3", zerolinecolor: "#d0d5dd" }, extra);
  const $ = (id) => document.getElementById(id);
  const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 3 });
  const percent = new Intl.NumberFormat(undefined, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const fmt = (value, format) => (value === null || value === undefined ? "–" : format.format(value));
  const state = { placements: [], segment: ALL };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function plot(id, traces, extra) {
    const node = $(id);
    node.replaceChildren();
    const layout = Object.assign({
      font: { family: FONT, size: 12, color: "#344054" }, margin: { l: 56, r: 16, t: 8, b: 56 },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", hoverlabel: { font: { family: FONT } },
      legend: { orientation: "h", x: 0, y: -0.2 }, xaxis: grid(), yaxis: grid(),
    }, extra);
    Plotly.newPlot(node, traces, layout, CONFIG);
  }

  function emptyChart(id, message) {
    const node = $(id);
    if (window.Plotly) Plotly.purge(node);
    node.replaceChildren(el("div", { class: "chart-empty" }, message));
  }

  function table(id, headers, rows) {
    const head = el("tr", {}, ...headers.map((h) => el("th", {}, h)));
    $(id).replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c))))));
  }

  function status(message, isError) {
    $("status").textContent = message || "";
    $("status").className = isError ? "status error" : "status";
    $("status").hidden = !message;
  }

  function showKeyPanel(message) {
    for (const id of ["content", "empty", "status", "refresh", "change-key", "pickers", "recommender"]) $(id).hidden = true;
    $("key-panel").hidden = false;
    $("key-error").textContent = message || "";
    $("key-input").value = "";
    $("key-input").focus();
  }

  class Refused extends Error {}

  async function api(path) {
    const key = sessionStorage.getItem(KEY_STORAGE);
    const response = await fetch(path, { headers: { Authorization: "Bearer " + key } });
    if (response.status === 401 || response.status === 403) {
      sessionStorage.removeItem(KEY_STORAGE);
      showKeyPanel(response.status === 401 ? "That key was not accepted (unknown or revoked)." : "That key lacks the admin scope.");
      throw new Refused();
    }
    if (!response.ok) throw new Error(`${path} answered ${response.status}`);
    return response.json();
  }

  async function guarded(work) {
    try {
      await work();
    } catch (error) {
      if (!(error instanceof Refused)) status("Could not load the dashboard: " + error.message, true);
    }
  }

  async function load() {
    if (!sessionStorage.getItem(KEY_STORAGE)) return showKeyPanel();
    await guarded(async () => {
      const data = await api(`/v1/dashboard/placements?days=${$("days").value}`);
      for (const id of ["key-panel", "status"]) $(id).hidden = true;
      for (const id of ["refresh", "change-key", "pickers"]) $(id).hidden = false;
      guarded(loadRecommenders);
      state.placements = data.placements;
      const current = $("placement").value;
      $("placement").replaceChildren(...data.placements.map((p) => el("option", { value: p.name }, `${p.name} (${number.format(p.decisions)})`)));
      if (!data.placements.length) {
        $("content").hidden = true;
        $("empty").hidden = false;
        return;
      }
      const busiest = [...data.placements].sort((a, b) => b.decisions - a.decisions)[0].name;
      $("placement").value = data.placements.some((p) => p.name === current) ? current : busiest;
      await loadPlacement();
    });
  }

  async function loadPlacement() {
    const placement = $("placement").value;
    const days = $("days").value;
    const base = `/v1/dashboard/placements/${encodeURIComponent(placement)}`;
    const segment = state.segment === ALL ? "" : `&segment=${encodeURIComponent(state.segment)}`;
    const [offers, allocation, evaluation, experiments] = await Promise.all([
      api(`${base}/offers?days=${days}`),
      api(`${base}/allocation?days=${days}${segment}`),
      api(`${base}/evaluation?days=${days}`),
      api(`/v1/dashboard/experiments?placement=${encodeURIComponent(placement)}`),
    ]);
    $("empty").hidden = true;
    $("content").hidden = false;
    renderSegments(offers.segments);
    const names = new Map(offers.offers.map((o) => [o.offer_id, o.name]));
    const offerName = (id) => names.get(id) || id;
    const segmentName = new Map(offers.segments.map((s) => [s.key, s.name]));
    state.colors = new Map(offers.segments.map((s, i) => [s.key, PALETTE[i % PALETTE.length]]));
    renderKpis(state.placements.find((p) => p.name === placement), evaluation, offers);
    renderExposures(offers, offerName, segmentName);
    renderConversion(offers, offerName, segmentName);
    renderAllocation(allocation, offerName, segmentName);
    renderEvaluation(evaluation, offerName);
    renderExperiments(experiments.experiments);
  }

  function renderSegments(segments) {
    const options = [el("option", { value: ALL }, "All segments"), ...segments.map((s) => el("option", { value: s.key }, `${s.name} (${number.format(s.decisions)})`))];
    $("segment").replaceChildren(...options);
    if (!segments.some((s) => s.key === state.segment)) state.segment = ALL;
    $("segment").value = state.segment;
  }

  function renderKpis(placement, evaluation, offers) {
    const observed = evaluation.observed;
    const tiles = [
      ["Decisions", fmt(placement.decisions, number), `in the last ${$("days").value} days`],
      ["Strategy", placement.strategy || "–", placement.strategy === "bandit" ? `${placement.algorithm}, ${fmt(placement.exploration, percent)} explored` : placement.algorithm || "not configured"],
      ["Policy version", placement.policy_version === null ? "–" : String(placement.policy_version), "the active bandit's updates"],
      ["Holdout", fmt(placement.holdout_share, percent), `default offer ${placement.default_offer_id || "none"}`],
      ["Conversion", fmt(observed.rate, percent), observed.rate === null ? "no policy decisions" : `${percent.format(observed.ci_low)}–${percent.format(observed.ci_high)} · ${offers.offers.length} offers`],
    ];
    $("kpis").replaceChildren(...tiles.map(([label, value, hint]) =>
      el("div", { class: "kpi" }, el("div", { class: "label" }, label), el("div", { class: "value" }, value), el("div", { class: "hint" }, hint))));
  }

  function statsBySegment(offers) {
    const bySegment = new Map();
    for (const stat of offers.stats) {
      if (!bySegment.has(stat.segment)) bySegment.set(stat.segment, new Map());
      bySegment.get(stat.segment).set(stat.offer_id, stat);
    }
    const shown = state.segment === ALL ? offers.segments.map((s) => s.key) : [state.segment];
    return { bySegment, shown, ids: [...(bySegment.get(ALL) || new Map()).keys()] };
  }

  function renderExposures(offers, offerName, segmentName) {
    const { bySegment, shown, ids } = statsBySegment(offers);
    if (!ids.length) return emptyChart("chart-exposures", "No decision showed an offer in this window.");
    const x = ids.map(offerName);
    const traces = shown.map((key) => ({
      type: "bar", name: segmentName.get(key) || key, x, marker: { color: state.colors.get(key) },
      y: ids.map((id) => (bySegment.get(key)?.get(id)?.exposures || 0)),
      hovertemplate: `${segmentName.get(key) || key}<br>%{x}: %{y:,} decisions<extra></extra>`,
    }));
    plot("chart-exposures", traces, { barmode: "stack", yaxis: grid({ title: { text: "decisions" } }) });
  }

  function renderConversion(offers, offerName, segmentName) {
    const { bySegment, shown, ids } = statsBySegment(offers);
    if (!ids.length) return emptyChart("chart-conversion", "No decision showed an offer in this window.");
    const keys = state.segment === ALL ? [ALL, ...shown] : shown;
    const traces = keys.map((key) => {
      const stats = ids.map((id) => bySegment.get(key)?.get(id));
      const rate = (s) => (s && s.rate !== null ? s.rate : null);
      return {
        type: "bar", name: key === ALL ? "All segments" : segmentName.get(key) || key, x: ids.map(offerName), y: stats.map(rate),
        marker: { color: key === ALL ? "#344054" : state.colors.get(key) },
        error_y: { type: "data", symmetric: false, array: stats.map((s) => (rate(s) === null ? 0 : s.ci_high - s.rate)),
          arrayminus: stats.map((s) => (rate(s) === null ? 0 : s.rate - s.ci_low)), color: "#475467", thickness: 1.2, width: 3 },
        customdata: stats.map((s) => (s ? `${number.format(s.conversions)} of ${number.format(s.exposures)}` : "no exposures")),
        hovertemplate: "%{x}: %{y:.1%}<br>%{customdata}<extra>%{fullData.name}</extra>",
      };
    });
    plot("chart-conversion", traces, { barmode: "group", yaxis: grid({ tickformat: ".0%", rangemode: "tozero", title: { text: "conversion rate" } }) });
  }

  function renderAllocation(allocation, offerName, segmentName) {
    const who = allocation.segment === null ? "all segments" : segmentName.get(allocation.segment) || allocation.segment;
    $("allocation-sub").textContent = `Share of the policy's decisions that put each offer first, per ${allocation.bucket} (${who})`;
    if (!allocation.times.length) return emptyChart("chart-allocation", "No decision chosen by a policy in this window.");
    const traces = allocation.series.map((s, i) => ({
      type: "scatter", mode: "lines", stackgroup: "share", name: offerName(s.offer_id), x: allocation.times, y: s.shares,
      line: { width: 0.5, color: PALETTE[i % PALETTE.length] }, customdata: s.counts.map((c, j) => `${number.format(c)} of ${number.format(allocation.totals[j])}`),
      hovertemplate: `${offerName(s.offer_id)}: %{y:.0%} (%{customdata})<extra></extra>`,
    }));
    plot("chart-allocation", traces, { hovermode: "x unified", yaxis: grid({ tickformat: ".0%", range: [0, 1], title: { text: "share of decisions" } }) });
  }

  function renderEvaluation(evaluation, offerName) {
    const label = (target) => (target === "uniform" ? "uniform random" : `always ${offerName(target.slice("static:".length))}`);
    const rows = evaluation.targets.flatMap((t) => [["IPS", t.ips], ["SNIPS", t.snips], ["DR", t.dr]]
      .filter(([, e]) => e !== null).map(([name, e]) => ({ y: `${label(t.target)} · ${name}`, e })));
    table("ope", ["Target", "IPS", "SNIPS", "Doubly robust", "Effective sample", "Rows", ""], evaluation.targets.map((t) => [
      label(t.target), ...[t.ips, t.snips, t.dr].map((e) => (e ? `${percent.format(e.estimate)} (${percent.format(e.ci_low)}–${percent.format(e.ci_high)})` : "–")),
      number.format(t.ess), number.format(t.rows), t.warning ? el("span", { class: "pill warn" }, t.warning) : "",
    ]));
    if (!rows.length) return emptyChart("chart-ope", evaluation.message || "No decision chosen by a policy in this window.");
    const observed = evaluation.observed.rate;
    plot("chart-ope", [{
      type: "scatter", mode: "markers", x: rows.map((r) => r.e.estimate), y: rows.map((r) => r.y), marker: { color: "#3b5bdb", size: 9 },
      error_x: { type: "data", symmetric: false, array: rows.map((r) => r.e.ci_high - r.e.estimate), arrayminus: rows.map((r) => r.e.estimate - r.e.ci_low), color: "#3b5bdb" },
      hovertemplate: "%{y}: %{x:.2%}<extra></extra>", showlegend: false,
    }], {
      margin: { l: 210, r: 16, t: 24, b: 40 }, xaxis: grid({ tickformat: ".0%", title: { text: "conversion per decision" } }),
      yaxis: { autorange: "reversed" },
      shapes: observed === null ? [] : [{ type: "line", yref: "paper", y0: 0, y1: 1, x0: observed, x1: observed, line: { color: "#e8590c", dash: "dash" } }],
      annotations: observed === null ? [] : [{ x: observed, y: 1, yref: "paper", yanchor: "bottom", showarrow: false, text: `logged policy ${percent.format(observed)}`, font: { size: 11, color: "#e8590c" } }],
    });
  }

  function renderExperiments(experiments) {
    $("experiments").replaceChildren(...experiments.map(renderExperiment));
    const rows = experiments.flatMap((x) => x.comparisons.map((c) => ({ y: `${x.name}: ${c.arm} vs ${x.arms[0].name}`, c })));
    const bar = (name, color, low, high, shift) => ({
      type: "scatter", mode: "markers", orientation: "h", name, x: rows.map((r) => r.c.difference), y: rows.map((r) => r.y), marker: { color, size: 8 },
      // An unbounded interval comes as null (JSON has no infinity): drawn as no bar.
      error_x: { type: "data", symmetric: false, array: rows.map((r) => (r.c[high] ?? r.c.difference) - r.c.difference),
        arrayminus: rows.map((r) => r.c.difference - (r.c[low] ?? r.c.difference)), color },
      offsetgroup: shift, hovertemplate: `%{y}<br>difference %{x:.3f} (${name})<extra></extra>`,
    });
    if (!rows.length) return emptyChart("chart-experiments", experiments.length ? "Not enough exposed customers per arm to compare yet." : "No experiment on this placement.");
    $("chart-experiments").style.height = `${Math.max(200, 130 + rows.length * 80)}px`;
    plot("chart-experiments", [bar("fixed-horizon 95%", "#98a2b3", "ci_low", "ci_high", "a"), bar("always-valid 95%", "#3b5bdb", "sequential_ci_low", "sequential_ci_high", "b")], {
      scattermode: "group", margin: { l: 260, r: 16, t: 32, b: 48 }, yaxis: { autorange: "reversed" },
      legend: { orientation: "h", x: 0, y: 1, yanchor: "bottom" },
      xaxis: grid({ title: { text: "difference against the control (per exposed customer)" } }),
      shapes: [{ type: "line", yref: "paper", y0: 0, y1: 1, x0: 0, x1: 0, line: { color: "#667085", dash: "dash" } }],
    });
  }

  function renderExperiment(x) {
    const states = new Map(x.states.map((s) => [s.arm, s.state]));
    const srm = x.sample_ratio_p_value === null ? "no exposures yet" : x.sample_ratio_mismatch ? `sample ratio mismatch (p=${decimal.format(x.sample_ratio_p_value)})` : `sample ratio ok (p=${decimal.format(x.sample_ratio_p_value)})`;
    const wrap = el("div", { class: "experiment" },
      el("h3", {}, x.name, " ", el("span", { class: `pill ${x.status}` }, x.status), " ", el("span", { class: x.sample_ratio_mismatch ? "pill warn" : "pill" }, srm)),
      el("div", { class: "desc" }, `${x.metric} · CUPED variance reduction ${fmt(x.cuped_variance_reduction, percent)}`),
      el("table", { class: "table" }));
    const comparison = new Map(x.comparisons.map((c) => [c.arm, c]));
    const rows = x.arms.map((a, i) => {
      const c = comparison.get(a.name);
      const test = i === 0 ? "control" : c ? el("span", { class: `pill ${states.get(a.name)}` }, `${states.get(a.name)} · p=${decimal.format(c.sequential_p_value)}`) : "too few customers";
      return [a.name, a.strategy, percent.format(a.share), number.format(a.exposures), number.format(a.conversions), fmt(a.conversion_rate, percent), number.format(a.revenue), test];
    });
    const head = el("tr", {}, ...["Arm", "Strategy", "Share", "Customers", "Converted", "Rate", "Revenue", "Sequential test"].map((h) => el("th", {}, h)));
    wrap.lastChild.append(el("thead", {}, head), el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c))))));
    return wrap;
  }

  // The recommender card: its latest runs against popularity, and one customer's list.
  const versus = (model, popularity) => (model === null || model === undefined ? "–" : `${decimal.format(model)} (popularity ${fmt(popularity, decimal)})`);

  async function loadRecommenders() {
    const data = await api("/v1/dashboard/recommenders?limit=5");
    $("recommender").hidden = false;
    if (!data.runs.length) {
      $("recommender-runs").replaceChildren(el("caption", {}, "No recommender run yet: POST /v1/recommenders/runs trains one."));
      return;
    }
    table("recommender-runs", ["Run", "Status", "Finished", "Precision@10", "NDCG@10", "Test customers", ""], data.runs.map((r) => [
      `#${r.id}`,
      el("span", { class: `pill ${r.status}` }, r.status === "running" ? `running ${percent.format(r.progress)}` : r.status),
      r.finished_at ? new Date(r.finished_at).toLocaleString() : "–",
      versus(r.model?.precision, r.popularity?.precision),
      versus(r.model?.ndcg, r.popularity?.ndcg),
      fmt(r.test_users, number),
      r.id === data.served ? el("span", { class: "pill served" }, "served") : r.error || r.note || "",
    ]));
  }

  async function lookUp(customerId) {
    const answer = await api(`/v1/recommendations/${encodeURIComponent(customerId)}?n=10`);
    $("recs-answer").textContent = answer.items.length
      ? `${answer.items.length} products for ${answer.customer_id}, from run #${answer.model_version}`
      : `No products to recommend to ${answer.customer_id} yet (no list from a succeeded run).`;
    $("recs-items").hidden = !answer.items.length;
    table("recs-items", ["Product", "Score", "Why"], answer.items.map((item) => [item.product_id, decimal.format(item.score), item.reason]));
  }

  $("recs-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const customerId = $("recs-customer").value.trim();
    if (customerId) guarded(() => lookUp(customerId));
  });
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORAGE, key);
    load();
  });
  $("change-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    showKeyPanel();
  });
  $("refresh").addEventListener("click", load);
  $("days").addEventListener("change", load);
  $("placement").addEventListener("change", () => guarded(loadPlacement));
  $("segment").addEventListener("change", () => {
    state.segment = $("segment").value;
    guarded(loadPlacement);
  });
  // The segment dashboard is the segment API's page, on the same host (its own port).
  const segments = $("segments-link");
  segments.href = `${location.protocol}//${location.hostname}:${segments.dataset.port}/dashboard`;
  load();
})();
