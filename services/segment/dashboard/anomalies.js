// The dashboard's anomalies section: flags per day and kind, and the newest flags.
// Reads the key the page keeps; text from the server is only ever set as textContent.
"use strict";

(function () {
  const KEY_STORAGE = "segmenta.segments.key";
  const COLORS = {
    spend_spike: "#4c78a8", spend_collapse: "#f58518", refund_burst: "#e45756",
    support_surge: "#72b7b2", sentiment_drop: "#b279a2", bot_burst: "#54a24b",
    population_outlier: "#9d755d",
  };
  const $ = (id) => document.getElementById(id);
  const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }

  function renderCounts(byDay) {
    const kinds = [...new Set(byDay.map((row) => row.kind))].sort();
    const traces = kinds.map((kind) => {
      const rows = byDay.filter((row) => row.kind === kind);
      return {
        type: "bar", name: kind, x: rows.map((row) => row.day), y: rows.map((row) => row.count),
        marker: { color: COLORS[kind] || "#bab0ac" },
      };
    });
    const layout = {
      barmode: "stack", margin: { l: 48, r: 16, t: 8, b: 40 }, height: 300,
      legend: { orientation: "h", y: -0.2 }, yaxis: { title: { text: "flags" } },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    };
    window.Plotly.react("chart-anomalies", traces, layout, { displaylogo: false, responsive: true });
  }

  function renderLatest(latest) {
    const head = document.createElement("tr");
    for (const title of ["Customer", "Kind", "Reason", "Size", "Detected"]) {
      const th = document.createElement("th");
      th.textContent = title;
      head.append(th);
    }
    const body = document.createElement("tbody");
    for (const flag of latest) {
      const tr = document.createElement("tr");
      tr.append(
        cell(flag.customer_id), cell(flag.kind), cell(flag.reason),
        cell(flag.size.toFixed(1), "num"), cell(when(flag.detected_at)),
      );
      body.append(tr);
    }
    const thead = document.createElement("thead");
    thead.append(head);
    $("anomalies-latest").replaceChildren(thead, body);
  }

  async function load() {
    const key = sessionStorage.getItem(KEY_STORAGE);
    const card = $("anomalies-card");
    if (!key || !card) return;
    let response;
    try {
      response = await fetch("/v1/anomalies/summary", { headers: { Authorization: "Bearer " + key } });
    } catch (error) {
      return;
    }
    if (!response.ok) return;  // the main script reports key and service problems
    const data = await response.json();
    card.hidden = !data.latest.length;
    if (!data.latest.length) return;
    renderLatest(data.latest);
    if (window.Plotly) renderCounts(data.by_day);
  }

  window.addEventListener("load", load);
  document.addEventListener("submit", () => setTimeout(load, 0));
  const refresh = $("refresh");
  if (refresh) refresh.addEventListener("click", load);
})();
