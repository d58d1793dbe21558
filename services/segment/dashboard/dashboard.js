// Segmenta's segment dashboard: asks for a key once, fetches /v1/dashboard/data, draws it.
// Plain DOM and Plotly; text from the server is only ever set as textContent.
"use strict";

(function () {
  const KEY_STORAGE = "segmenta.segments.key";
  const OTHER = "#c4c9d2";
  let currency = "EUR"; // amounts' currency, from the data answer
  const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  const CONFIG = {
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
  };
  const $ = (id) => document.getElementById(id);
  const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
  const percent = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 0 });
  let refreshTimer = null;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "style") Object.assign(node.style, value);
      else node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const fmt = (value, format) => (value === null || value === undefined ? "–" : format.format(value));
  const when = (iso) => (iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "–");

  function layout(extra) {
    return Object.assign(
      {
        font: { family: FONT, size: 12, color: "#344054" },
        margin: { l: 56, r: 16, t: 36, b: 48 },
        paper_bgcolor: "rgba(0,0,0,0)",
        plot_bgcolor: "rgba(0,0,0,0)",
        // Above the plot: a legend below it collides with rotated ticks and axis titles.
        legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", traceorder: "normal" },
        hoverlabel: { font: { family: FONT } },
      },
      extra,
      {
        xaxis: Object.assign({ gridcolor: "#eef0f3", zerolinecolor: "#d0d5dd", automargin: true }, (extra || {}).xaxis),
        yaxis: Object.assign({ gridcolor: "#eef0f3", zerolinecolor: "#d0d5dd", automargin: true }, (extra || {}).yaxis),
      },
    );
  }

  // One entry per segment: beside the plot, one per line, so 15 long names never wrap
  // over the axis below (Plotly widens the right margin for it).
  const SIDE_LEGEND = { orientation: "v", x: 1.02, xanchor: "left", y: 1, yanchor: "top", traceorder: "normal" };

  // Tall enough for a side legend of ``entries`` lines: a legend that scrolls hides names.
  function fitLegend(id, entries) {
    const node = $(id);
    node.style.height = "";
    const base = node.getBoundingClientRect().height || 320;
    node.style.height = Math.max(base, 90 + entries * 22) + "px";
  }

  function plot(id, traces, extra) {
    const node = $(id);
    node.replaceChildren();
    Plotly.newPlot(node, traces, layout(extra), CONFIG);
  }

  function emptyChart(id, message) {
    const node = $(id);
    if (window.Plotly) Plotly.purge(node);
    node.replaceChildren(el("div", { class: "chart-empty" }, message));
  }

  // ---------------------------------------------------------------- key and loading

  function showKeyPanel(message) {
    for (const id of ["content", "empty", "runs-card", "status", "refresh", "change-key"]) $(id).hidden = true;
    $("run-info").textContent = "";
    $("key-panel").hidden = false;
    $("key-error").textContent = message || "";
    $("key-input").value = "";
    $("key-input").focus();
  }

  function status(message, isError) {
    const node = $("status");
    node.textContent = message || "";
    node.className = isError ? "status error" : "status";
    node.hidden = !message;
  }

  async function load() {
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (!key) return showKeyPanel();
    clearTimeout(refreshTimer);
    let response;
    try {
      response = await fetch("/v1/dashboard/data", { headers: { Authorization: "Bearer " + key } });
    } catch (error) {
      return status("Could not reach the segment service: " + error.message, true);
    }
    if (response.status === 401 || response.status === 403) {
      sessionStorage.removeItem(KEY_STORAGE);
      return showKeyPanel(
        response.status === 401
          ? "That key was not accepted (unknown or revoked)."
          : "That key lacks the segments:read scope.",
      );
    }
    if (!response.ok) {
      const retry = response.headers.get("Retry-After");
      return status(`The service answered ${response.status}` + (retry ? `; retrying in ${retry} s` : ""), true);
    }
    $("key-panel").hidden = true;
    $("refresh").hidden = false;
    $("change-key").hidden = false;
    render(await response.json());
  }

  // ---------------------------------------------------------------- page

  function render(data) {
    const colors = colorMap(data);
    renderRunInfo(data.run);
    renderRuns(data.recent_runs);
    const busy = data.recent_runs.find((run) => run.status === "pending" || run.status === "running");
    status(busy ? `Run #${busy.id} is ${busy.status} (${percent.format(busy.progress || 0)}); this page refreshes itself.` : "");
    if (busy) refreshTimer = setTimeout(load, 10000);
    if (!data.run) {
      $("content").hidden = true;
      $("empty").hidden = false;
      $("empty-url").textContent = location.origin + "/v1/segmentations";
      return;
    }
    if (data.message && !busy) status(data.message);
    $("empty").hidden = true;
    $("content").hidden = false;
    currency = data.currency || "EUR";
    renderKpis(data);
    renderSizes(data.segments);
    renderMap(data.projection, data.segments, colors);
    renderProfiles(data.profiles, data.segments);
    renderRules(data.segments, colors);
    renderClv(data.clv, data.segments, colors);
    renderKCurve(data.k_curve, data.run, data.segments.length);
    renderHistory(data.history, data.segments, colors);
    renderStability(data.run, data.segments, colors);
    renderDendrogram(data.dendrogram, data.run);
    renderFlow(data.run, colors);
  }

  // Who moved from which of the previous run's segments to which of this run's, and why.
  async function renderFlow(run, color) {
    const previous = run.metrics.previous_run_id;
    if (previous === null || previous === undefined) return emptyChart("chart-flow", "The first segmentation: nothing to compare with.");
    // The service says beforehand when the changes cannot be given (no failed request).
    if (run.changes_note) return emptyChart("chart-flow", `No comparison with run #${previous}: ${run.changes_note}.`);
    const key = sessionStorage.getItem(KEY_STORAGE);
    const url = `/v1/segmentations/${run.id}/changes?against=${previous}&sample=0`;
    let changes;
    try {
      const response = await fetch(url, { headers: { Authorization: "Bearer " + key } });
      if (!response.ok) return emptyChart("chart-flow", `No comparison with run #${previous} (${response.status}).`);
      changes = await response.json();
    } catch (error) {
      return emptyChart("chart-flow", "Could not load the changes: " + error.message);
    }
    const flows = changes.flows;
    const left = [...new Set(flows.map((f) => f.from_key))];
    const right = [...new Set(flows.map((f) => f.to_key))];
    const named = (flow, side) => (side === "from" ? flow.from_name || flow.from_key : flow.to_name || flow.to_key);
    const label = left.map((k) => `#${previous}: ${named(flows.find((f) => f.from_key === k), "from")}`)
      .concat(right.map((k) => `#${run.id}: ${named(flows.find((f) => f.to_key === k), "to")}`));
    const why = (f) => (f.why.length ? "<br>why: " + f.why.map((w) => `${w.label} ${w.shift > 0 ? "higher" : "lower"}`).join(", ") : "");
    $("flow-sub").textContent = `${number.format(changes.moved)} of ${number.format(changes.customers)} customers in another segment than under run #${previous}`;
    $("chart-flow").style.height = Math.max(320, 60 + Math.max(left.length, right.length) * 40) + "px";
    plot("chart-flow", [{
      type: "sankey", arrangement: "snap",
      node: { label, color: left.map(color).concat(right.map(color)), pad: 14, thickness: 14 },
      link: {
        source: flows.map((f) => left.indexOf(f.from_key)),
        target: flows.map((f) => left.length + right.indexOf(f.to_key)),
        value: flows.map((f) => f.customers),
        color: flows.map((f) => (f.from_key === f.to_key ? "rgba(196,201,210,0.45)" : "rgba(228,87,86,0.45)")),
        customdata: flows.map(why),
        hovertemplate: "%{source.label} → %{target.label}<br>%{value} customers%{customdata}<extra></extra>",
      },
    }], { margin: { l: 8, r: 8, t: 8, b: 8 } });
  }

  function colorMap(data) {
    // The server gives each segment key its colour: the same key, the same colour in every run.
    const colors = data.colors || {};
    return (key) => colors[key] || OTHER;
  }

  function names(segments) {
    const byKey = new Map(segments.map((s) => [s.key, s.name]));
    return (key) => (key === "" ? "Not assigned" : byKey.get(key) || key);
  }

  function renderRunInfo(run) {
    const node = $("run-info");
    node.replaceChildren();
    if (!run) return;
    const k = run.k === null || run.k === undefined ? "" : ` · k=${run.k}`;
    node.append(
      el("b", {}, `Run #${run.id}`),
      ` · ${run.algorithm}${k} · feature set ${run.feature_set} · activated ${when(run.activated_at)}`,
    );
  }

  function renderKpis(data) {
    const m = data.run.metrics;
    const tiles = [
      ["Customers", fmt(data.run.customers, number), "in segments"],
      ["Segments", String(data.segments.length), data.run.algorithm],
      ["Silhouette", fmt(m.silhouette, decimal), "−1 to 1, higher is better"],
      ["Rule fidelity", fmt(m.surrogate_fidelity, percent), "rules agree with the model"],
      ["Stability", m.ari_previous === null ? "–" : decimal.format(m.ari_previous), m.ari_previous === null ? "no previous run" : `ARI vs run #${m.previous_run_id ?? "–"}`],
      [`Mean CLV (${data.currency})`, data.clv ? fmt(data.clv.mean, number) : "–", data.clv ? `median ${fmt(data.clv.median, number)}` : "not scored yet"],
    ];
    $("kpis").replaceChildren(
      ...tiles.map(([label, value, hint]) =>
        el("div", { class: "kpi" }, el("div", { class: "label" }, label), el("div", { class: "value" }, value), el("div", { class: "hint" }, hint)),
      ),
    );
  }

  // ---------------------------------------------------------------- charts

  function renderSizes(segments) {
    if (!segments.length) return emptyChart("chart-sizes", "No segments in the active run.");
    // Horizontal bars: a segment's whole name reads on one line however many there are.
    const y = segments.map((s) => s.name);
    const bar = (name, values, color, text) => ({
      type: "bar", orientation: "h", name, y, x: values, marker: { color },
      text: values.map((v) => (v === null ? "" : percent.format(v))), textposition: "outside",
      hovertext: text, hovertemplate: "%{y}<br>" + name + ": %{x:.1%}<br>%{hovertext}<extra></extra>",
      cliponaxis: false,
    });
    const sizes = segments.map((s) => `${number.format(s.size)} customers`);
    const clv = segments.map((s) => (s.mean_clv === null ? `mean CLV – ${s.clv_note || ""}` : `mean CLV ${number.format(s.mean_clv)} ${currency}`));
    $("chart-sizes").style.height = Math.max(280, 70 + segments.length * 54) + "px";
    plot(
      "chart-sizes",
      [
        bar("Customers", segments.map((s) => s.share), "#4c78a8", sizes),
        bar("Revenue", segments.map((s) => s.revenue_share), "#f58518", sizes),
        bar("Lifetime value", segments.map((s) => s.clv_share), "#54a24b", clv),
      ],
      {
        barmode: "group", bargap: 0.25,
        xaxis: { tickformat: ".0%", gridcolor: "#eef0f3", rangemode: "tozero" },
        yaxis: { autorange: "reversed", ticklabelstandoff: 6 },
        margin: { l: 8, r: 48, t: 36, b: 32 },
      },
    );
  }

  function renderMap(projection, segments, color) {
    if (!projection) return emptyChart("chart-map", "This run stored no 2-D map.");
    const method = projection.method === "tsne" ? "t-SNE" : projection.method.toUpperCase();
    $("map-sub").textContent = `Customers in two dimensions (${method}), coloured by segment`;
    const name = names(segments);
    const byKey = new Map();
    projection.keys.forEach((key, i) => {
      if (!byKey.has(key)) byKey.set(key, { x: [], y: [] });
      byKey.get(key).x.push(projection.x[i]);
      byKey.get(key).y.push(projection.y[i]);
    });
    const order = [...segments.map((s) => s.key), ...[...byKey.keys()].filter((k) => !segments.some((s) => s.key === k))];
    const traces = order.filter((key) => byKey.has(key)).map((key) => ({
      type: "scatter", mode: "markers", name: name(key), x: byKey.get(key).x, y: byKey.get(key).y,
      marker: { color: color(key), size: 5, opacity: 0.75 }, hovertemplate: name(key) + "<extra></extra>",
    }));
    const axis = { showticklabels: false, zeroline: false, gridcolor: "#f2f4f7" };
    fitLegend("chart-map", traces.length);
    plot("chart-map", traces, { xaxis: axis, yaxis: axis, margin: { l: 16, r: 16, t: 8, b: 16 }, legend: SIDE_LEGEND });
  }

  function renderProfiles(profiles, segments) {
    if (!profiles) return emptyChart("chart-profiles", "This run stored no segment profiles.");
    const name = names(segments);
    const rows = profiles.keys.map(name);
    const z = profiles.lifts;
    const limit = Math.max(1, ...z.flat().filter((v) => v !== null).map(Math.abs));
    $("chart-profiles").style.height = Math.max(300, 250 + rows.length * 40) + "px";
    plot(
      "chart-profiles",
      [{
        type: "heatmap", x: profiles.labels && profiles.labels.length ? profiles.labels : profiles.features, y: rows, z, zmid: 0, zmin: -limit, zmax: limit,
        colorscale: [[0, "#2166ac"], [0.25, "#92c5de"], [0.5, "#f7f7f7"], [0.75, "#f4a582"], [1, "#b2182b"]],
        texttemplate: "%{z:.1f}", hovertemplate: "%{y}<br>%{x}: %{z:.2f} sd<extra></extra>",
        colorbar: { title: { text: "lift" }, thickness: 12 }, xgap: 2, ygap: 2,
      }],
      { margin: { l: 8, r: 16, t: 8, b: 8 }, xaxis: { tickangle: -90, side: "bottom" }, yaxis: { autorange: "reversed" } },
    );
  }

  function renderRules(segments, color) {
    const head = el("tr", {}, ...["Segment", "Customers", "Rule", "Coverage", "Precision"].map((h, i) => el("th", i === 1 || i > 2 ? { class: "num", title: i === 3 ? "share of the segment the rule catches" : i === 4 ? "share of those caught who belong to the segment" : "" } : {}, h)));
    const rows = segments.map((s) => {
      const coverage = s.coverage ?? s.fidelity;
      const bar = el("span", { class: "bar" }, el("span", { style: { width: `${Math.round((coverage || 0) * 100)}%` } }));
      // A rule catching under half the segment describes part of it, not the segment.
      const rule = !s.rule
        ? el("span", { class: "desc" }, "this run stored no rule for the segment; the next run will")
        : s.low_coverage
          ? el("span", {}, el("span", { class: "tag" }, "partial"), " ", el("span", { class: "rule" }, s.rule),
              el("div", { class: "desc" }, `describes only ${fmt(coverage, percent)} of this segment`))
          : el("span", { class: "rule" }, s.rule);
      return el(
        "tr", {},
        el("td", {}, el("span", { class: "swatch", style: { background: color(s.key) } }), el("span", { class: "segname" }, s.name),
          el("div", { class: "desc" }, s.description || `key ${s.key}`)),
        el("td", { class: "num" }, number.format(s.size), el("div", { class: "desc" }, fmt(s.share, percent))),
        el("td", {}, rule),
        el("td", { class: "num" }, bar, fmt(coverage, percent)),
        el("td", { class: "num" }, fmt(s.precision, percent)),
      );
    });
    $("rules").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
  }

  function renderClv(clv, segments, color) {
    if (!clv) return emptyChart("chart-clv", "No customer has a CLV yet: the scoring task has not run.");
    const name = names(segments);
    const width = clv.edges[1] - clv.edges[0];
    const centers = clv.edges.slice(0, -1).map((edge) => edge + width / 2);
    const rank = new Map(segments.map((s, i) => [s.key, i]));
    const series = [...clv.series].sort((a, b) => (rank.get(a.key) ?? 99) - (rank.get(b.key) ?? 99));
    $("clv-sub").textContent = `Distribution of predicted CLV over ${number.format(clv.count)} customers, stacked by segment` +
      (clv.clipped_at === null ? "" : ` (the top 1% folded into the last bar, above ${number.format(clv.clipped_at)})`);
    fitLegend("chart-clv", series.length);
    plot(
      "chart-clv",
      series.map((s) => ({
        type: "bar", name: name(s.key), x: centers, y: s.counts, width, marker: { color: color(s.key), line: { width: 0 } },
        hovertemplate: name(s.key) + "<br>CLV ≈ %{x:,.0f}: %{y} customers<extra></extra>",
      })),
      {
        barmode: "stack", bargap: 0.04, margin: { l: 56, r: 16, t: 8, b: 48 }, legend: SIDE_LEGEND,
        xaxis: { title: { text: `predicted lifetime value (${currency})` }, gridcolor: "#eef0f3" }, yaxis: { title: { text: "customers" }, gridcolor: "#eef0f3" },
      },
    );
  }

  function renderKCurve(curve, run, nSegments) {
    if (!curve.length) return emptyChart("chart-k", "This run tried a single k (or found its own number of segments).");
    const k = curve.map((p) => p.k);
    const traces = [
      { type: "scatter", mode: "lines+markers", name: "silhouette", x: k, y: curve.map((p) => p.silhouette), line: { color: "#3b5bdb", width: 2 } },
      { type: "scatter", mode: "lines+markers", name: "Davies–Bouldin", x: k, y: curve.map((p) => p.davies_bouldin), yaxis: "y2", line: { color: "#e8590c", width: 2, dash: "dot" } },
    ];
    const chosen = typeof run.k === "number" ? run.k : nSegments;
    plot("chart-k", traces, {
      xaxis: { title: { text: "k (segments)" }, dtick: 1, gridcolor: "#eef0f3" },
      yaxis: { title: { text: "silhouette" }, gridcolor: "#eef0f3" },
      yaxis2: { title: { text: "Davies–Bouldin" }, overlaying: "y", side: "right", showgrid: false },
      margin: { l: 56, r: 56, t: 28, b: 84 },
     
      shapes: [{ type: "line", x0: chosen, x1: chosen, yref: "paper", y0: 0, y1: 1, line: { color: "#98a2b3", dash: "dash" } }],
      annotations: [{ x: chosen, y: 1, yref: "paper", text: `chosen k = ${chosen}`, showarrow: false, yanchor: "bottom", font: { size: 11, color: "#667085" } }],
    });
  }

  function renderHistory(history, segments, color) {
    if (!history.length) return emptyChart("chart-history", "No successful run yet.");
    const name = names(segments);
    // Run ids are opaque 15-digit numbers: the axis counts the runs shown, the hover names them.
    const x = history.map((_, i) => String(i + 1));
    const keys = [...new Set(history.flatMap((run) => Object.keys(run.sizes)))];
    const rank = new Map(segments.map((s, i) => [s.key, i]));
    keys.sort((a, b) => (rank.get(a) ?? 99) - (rank.get(b) ?? 99));
    fitLegend("chart-history", keys.length);
    plot(
      "chart-history",
      keys.map((key) => ({
        type: "bar", name: name(key), x, y: history.map((run) => run.sizes[key] || 0), marker: { color: color(key) },
        customdata: history.map((run) => [run.id, when(run.finished_at)]),
        hovertemplate: name(key) + "<br>run #%{customdata[0]} (%{customdata[1]}): %{y} customers<extra></extra>",
      })),
      {
        barmode: "stack", margin: { l: 56, r: 16, t: 8, b: 48 }, legend: SIDE_LEGEND,
        xaxis: { title: { text: "run (1 = the oldest shown)" }, type: "category" }, yaxis: { title: { text: "customers" }, gridcolor: "#eef0f3" },
      },
    );
  }

  function renderStability(run, segments, color) {
    const ari = run.metrics.ari_previous;
    const compared = segments.filter((s) => s.jaccard_previous !== null);
    $("stability-sub").textContent = ari === null
      ? "Overlap of each segment with the previous run (Jaccard)"
      : `Overlap of each segment with the previous run (Jaccard); dashed line: overall agreement, ARI ${decimal.format(ari)}`;
    if (!compared.length) return emptyChart("chart-stability", "The first segmentation: there is no previous run to compare with yet.");
    // Horizontal bars: whole segment names, one line each, however many segments.
    $("chart-stability").style.height = Math.max(260, 60 + compared.length * 30) + "px";
    plot(
      "chart-stability",
      [{
        type: "bar", orientation: "h", y: compared.map((s) => s.name), x: compared.map((s) => s.jaccard_previous),
        marker: { color: compared.map((s) => color(s.key)) }, text: compared.map((s) => decimal.format(s.jaccard_previous)),
        textposition: "outside", cliponaxis: false, hovertemplate: "%{y}: Jaccard %{x:.2f}<extra></extra>", showlegend: false,
      }],
      {
        xaxis: { range: [0, 1.1], title: { text: "Jaccard vs previous" }, gridcolor: "#eef0f3" },
        yaxis: { autorange: "reversed" },
        margin: { l: 8, r: 16, t: 8, b: 48 },
        shapes: ari === null ? [] : [{ type: "line", yref: "paper", y0: 0, y1: 1, x0: ari, x1: ari, line: { color: "#667085", dash: "dash" } }],
      },
    );
  }

  function renderDendrogram(dendrogram, run) {
    const card = $("dendrogram-card");
    card.hidden = !dendrogram;
    if (!dendrogram) return;
    const traces = dendrogram.icoord.map((xs, i) => ({
      type: "scatter", mode: "lines", x: xs, y: dendrogram.dcoord[i], line: { color: "#475467", width: 1.2 }, hoverinfo: "skip", showlegend: false,
    }));
    const ticks = dendrogram.labels.map((_, i) => 5 + 10 * i);
    plot("chart-dendrogram", traces, {
      xaxis: { tickvals: ticks, ticktext: dendrogram.labels, showgrid: false, zeroline: false, tickangle: -45 },
      yaxis: { title: { text: "merge distance" }, gridcolor: "#eef0f3" },
      margin: { l: 56, r: 16, t: 8, b: 80 },
    });
    $("chart-dendrogram").dataset.run = String(run.id);
  }

  function renderRuns(runs) {
    $("runs-card").hidden = !runs.length;
    const head = el("tr", {}, ...["Run", "Status", "Algorithm", "Progress", "Created", "Finished", ""].map((h) => el("th", {}, h)));
    const rows = runs.map((run) =>
      el(
        "tr", {},
        el("td", {}, `#${run.id}`),
        el("td", {}, el("span", { class: `pill ${run.status}` }, run.status), run.error ? el("div", { class: "desc" }, run.error) : null),
        el("td", {}, run.algorithm),
        el("td", { class: "num" }, percent.format(run.progress || 0)),
        el("td", {}, when(run.created_at)),
        el("td", {}, when(run.finished_at)),
        el("td", {}, run.active ? el("span", { class: "pill succeeded" }, "active") : ""),
      ),
    );
    $("runs").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
  }

  // ---------------------------------------------------------------- start

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORAGE, key);
    load();
  });
  $("change-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    clearTimeout(refreshTimer);
    showKeyPanel();
  });
  $("refresh").addEventListener("click", load);
  // The personalize page belongs to the personalize API: same host, its own port.
  $("personalize-link").href = `${location.protocol}//${location.hostname}:${$("personalize-link").dataset.port}/dashboard`;
  load();
})();
