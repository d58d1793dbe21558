// The segment dashboard's attribution card: which channels earned the last 90 days'
// orders, by each model. Reads the key the main page keeps, fetches /v1/attribution.
// Text from the server is only ever set as textContent (Plotly escapes its labels).
"use strict";

(function () {
  const KEY_STORAGE = "segmenta.segments.key";
  const MODELS = [
    ["last_touch", "Last touch", "#bab0ac"],
    ["first_touch", "First touch", "#9d755d"],
    ["linear", "Linear", "#72b7b2"],
    ["markov", "Markov (removal effect)", "#4c78a8"],
    ["shapley", "Shapley", "#f58518"],
  ];
  const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
  const $ = (id) => document.getElementById(id);
  const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

  function message(text) {
    const node = $("chart-attribution");
    if (window.Plotly) Plotly.purge(node);
    const box = document.createElement("div");
    box.className = "chart-empty";
    box.textContent = text;
    node.replaceChildren(box);
  }

  function draw(data) {
    $("attribution-sub").textContent =
      `Share of ${number.format(data.conversions)} orders credited to each channel by each model ` +
      `(${number.format(data.journeys)} journeys; ${number.format(data.orders_without_touches)} ` +
      "orders had no touch before them)";
    if (!data.channels.length) return message("No orders with touchpoints in the last 90 days.");
    const channels = data.channels.map((c) => c.channel);
    const traces = MODELS.map(([model, label, color]) => ({
      type: "bar",
      name: label,
      x: data.channels.map((c) => c.share[model]),
      y: channels,
      orientation: "h",
      marker: { color },
      hovertemplate: "%{y}: %{x:.0%}<extra>" + label + "</extra>",
    }));
    const node = $("chart-attribution");
    node.replaceChildren();
    Plotly.newPlot(
      node,
      traces,
      {
        barmode: "group",
        font: { family: FONT, size: 12, color: "#344054" },
        margin: { l: 80, r: 16, t: 36, b: 40 },
        paper_bgcolor: "rgba(0,0,0,0)",
        plot_bgcolor: "rgba(0,0,0,0)",
        legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
        xaxis: { tickformat: ".0%", gridcolor: "#eef0f3", automargin: true },
        yaxis: { autorange: "reversed", automargin: true },
      },
      { displaylogo: false, responsive: true },
    );
  }

  async function load() {
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (!key || !$("chart-attribution")) return;
    let response;
    try {
      response = await fetch("/v1/attribution", { headers: { Authorization: "Bearer " + key } });
    } catch (error) {
      return message("Could not reach the segment service.");
    }
    if (!response.ok) return message(`The service answered ${response.status}.`);
    draw(await response.json());
  }

  // After the main page stored the key (submit) or asked for fresh data (refresh).
  $("key-form").addEventListener("submit", () => setTimeout(load, 0));
  $("refresh").addEventListener("click", load);
  load();
})();
