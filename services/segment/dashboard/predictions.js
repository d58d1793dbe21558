// The dashboard's churn and purchase-propensity section: reads /v1/predictions with the
// page's key and draws each model's reliability curve and lift chart, with its figures
// against the baselines. Text from the server is only ever set as textContent.
"use strict";

(function () {
  const KEY_STORAGE = "segmenta.segments.key"; // the page's key (dashboard.js asks for it)
  const MODELS = { churn: "Churn", purchase_propensity: "Purchase propensity" };
  const COLORS = { churn: "#e45756", purchase_propensity: "#4c78a8" };
  const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  const CONFIG = { displaylogo: false, responsive: true };
  const $ = (id) => document.getElementById(id);
  const fixed = (value) => (typeof value === "number" ? value.toFixed(3) : "–");

  function layout(extra) {
    return Object.assign(
      {
        font: { family: FONT, size: 12, color: "#344054" },
        margin: { l: 56, r: 16, t: 36, b: 48 },
        paper_bgcolor: "rgba(0,0,0,0)",
        plot_bgcolor: "rgba(0,0,0,0)",
        legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
      },
      extra,
    );
  }

  // The active run of each model, else its newest succeeded one.
  function chosen(runs) {
    const found = {};
    for (const run of runs) {
      if (run.status !== "succeeded" || !MODELS[run.model]) continue;
      const current = found[run.model];
      if (!current || (run.active && !current.active)) found[run.model] = run;
    }
    return Object.values(found);
  }

  function renderReliability(runs) {
    const traces = [
      {
        x: [0, 1], y: [0, 1], mode: "lines", name: "perfectly calibrated",
        line: { dash: "dot", color: "#98a2b3" }, hoverinfo: "skip",
      },
    ];
    for (const run of runs) {
      const curve = ((run.artifact || {}).reliability || {}).calibrated || [];
      traces.push({
        x: curve.map((p) => p.predicted),
        y: curve.map((p) => p.observed),
        text: curve.map((p) => `${p.count} customers`),
        mode: "lines+markers",
        name: `${MODELS[run.model]} (ECE ${fixed((run.metrics || {}).ece)})`,
        line: { color: COLORS[run.model] },
      });
    }
    Plotly.newPlot($("chart-reliability"), traces, layout({
      xaxis: { title: { text: "predicted probability" }, range: [0, 1] },
      yaxis: { title: { text: "observed rate" }, range: [0, 1] },
    }), CONFIG);
  }

  function renderLift(runs) {
    const traces = runs.map((run) => {
      const lift = (run.artifact || {}).lift || [];
      return {
        type: "bar",
        x: lift.map((row) => `D${row.decile}`),
        y: lift.map((row) => row.lift),
        name: MODELS[run.model],
        marker: { color: COLORS[run.model] },
      };
    });
    Plotly.newPlot($("chart-lift"), traces, layout({
      barmode: "group",
      xaxis: { title: { text: "decile of customers, highest score first" } },
      yaxis: { title: { text: "lift over the base rate" } },
      shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 1, y1: 1, line: { dash: "dot", color: "#98a2b3" } }],
    }), CONFIG);
  }

  function cell(tag, text) {
    const node = document.createElement(tag);
    node.textContent = text;
    return node;
  }

  function renderFigures(runs) {
    const table = $("prediction-figures");
    const head = document.createElement("tr");
    for (const title of ["model", "run", "as of", "AUC", "PR-AUC", "ECE", "Brier", "calibration", "AUC recency only", "AUC BG/NBD"]) {
      head.append(cell("th", title));
    }
    const rows = [head];
    for (const run of runs) {
      const m = run.metrics || {};
      const base = m.baselines || {};
      const row = document.createElement("tr");
      row.append(
        cell("td", MODELS[run.model]),
        cell("td", `#${run.id}${run.active ? " (active)" : ""}`),
        cell("td", (run.as_of || "").slice(0, 10)),
        cell("td", fixed(m.auc)),
        cell("td", fixed(m.pr_auc)),
        cell("td", fixed(m.ece)),
        cell("td", fixed(m.brier)),
        cell("td", m.calibration || "–"),
        cell("td", fixed((base.recency_only || {}).auc)),
        cell("td", fixed((base.bgnbd_expected_purchases || {}).auc)),
      );
      rows.push(row);
    }
    table.replaceChildren(...rows);
  }

  async function load() {
    const key = sessionStorage.getItem(KEY_STORAGE);
    const card = $("predictions-card");
    if (!key || !window.Plotly) return;
    let response;
    try {
      response = await fetch("/v1/predictions?limit=50", { headers: { Authorization: "Bearer " + key } });
    } catch (error) {
      return;
    }
    if (!response.ok) return;
    const runs = chosen((await response.json()).items);
    card.hidden = runs.length === 0;
    if (!runs.length) return;
    renderFigures(runs);
    renderReliability(runs);
    renderLift(runs);
  }

  $("key-form").addEventListener("submit", () => setTimeout(load, 0));
  $("refresh").addEventListener("click", load);
  load();
})();
