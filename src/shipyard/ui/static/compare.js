// Compare page: overlaid metric curves (charts.js), the "only differences" toggle of the
// params/metrics table, and params against a metric as parallel coordinates (Plotly
// parcoords), or as a scatter of one param when there are too few numeric axes.
"use strict";

(() => {
  const data = window.Shipyard.pageData();
  if (!data) return;
  const runs = data.runs;
  const MIN_NUMERIC_AXES = 3; // parcoords with fewer numeric axes reads worse than a scatter
  const MAX_CATEGORIES = 30; // a text param with more values than this makes no useful axis

  // --- Metric curves: one chart per metric, one trace per run that logged it, each run
  // in the same colour on every chart. Runs may have logged hundreds of metrics between
  // them: a chart fetches its series when it comes near the screen.
  function drawChart(el) {
    const key = el.dataset.metric;
    const logged = runs.filter((r) => Object.prototype.hasOwnProperty.call(r.metrics, key));
    const partial = logged.length < runs.length ? ` (${logged.length} of ${runs.length} runs)` : "";
    window.ShipyardCharts.metricChart(el, {
      title: key + partial,
      legend: true, // which run each curve is, even when only one logged the metric
      series: logged.map((r) => ({ run: r.id, label: r.name, key, color: runs.indexOf(r) })),
    });
  }
  const charts = document.querySelectorAll("#charts .chart[data-metric]");
  if ("IntersectionObserver" in window) {
    const observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        observer.unobserve(entry.target);
        drawChart(entry.target);
      }
    }, { rootMargin: "400px 0px" });
    charts.forEach((el) => observer.observe(el));
  } else {
    charts.forEach(drawChart);
  }

  // --- Only differences.
  const table = document.getElementById("compare-table");
  const toggle = document.getElementById("only-differences");
  if (table && toggle) {
    const none = document.getElementById("no-differences");
    toggle.addEventListener("change", () => {
      table.classList.toggle("only-differences", toggle.checked);
      const differing = table.querySelectorAll("tr.differs").length;
      none.hidden = !(toggle.checked && differing === 0);
    });
  }

  // --- Params against a metric.
  const target = document.getElementById("parallel");
  const metricSelect = document.getElementById("parallel-metric");
  if (!target || !metricSelect) return;
  const paramSelect = document.getElementById("scatter-param");
  const paramLabel = document.getElementById("scatter-param-label");
  const note = document.getElementById("parallel-note");

  // Plotly reads labels, names and titles as a little HTML (<b>, <a href>...): user text
  // goes in as entities so it shows as written. Tick texts are plain text already.
  const plain = (v) => String(v).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const isNumber = (v) => typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v));

  /** One axis per param that every run logged and that varies between them. */
  function paramAxes(chosen) {
    const keys = [...new Set(chosen.flatMap((r) => Object.keys(r.params)))].sort();
    const axes = [];
    for (const key of keys) {
      const values = chosen.map((r) => r.params[key]);
      if (values.some((v) => v === undefined)) continue;
      const distinct = [...new Set(values)];
      if (distinct.length < 2) continue;
      if (values.every(isNumber)) {
        axes.push({ label: key, numeric: true, raw: values, values: values.map(Number) });
      } else if (distinct.length <= MAX_CATEGORIES) {
        const categories = distinct.sort();
        axes.push({
          label: key, numeric: false, raw: values, categories,
          values: values.map((v) => categories.indexOf(v)),
        });
      }
    }
    return axes;
  }

  function layout(extra) {
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue("--fg").trim() || "#1d2330";
    const line = css.getPropertyValue("--line").trim() || "#e3e6ec";
    return Object.assign({
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: fg, size: 12 }, height: 380,
      margin: { l: 60, r: 40, t: 50, b: 50 },
      xaxis: { gridcolor: line }, yaxis: { gridcolor: line },
    }, extra);
  }
  const config = { responsive: true, displaylogo: false };

  function drawParcoords(axes, metric, values) {
    const dimensions = axes.map((a) => (a.numeric
      ? { label: plain(a.label), values: a.values }
      : { label: plain(a.label), values: a.values, tickvals: a.categories.map((_, i) => i), ticktext: a.categories }));
    dimensions.push({ label: plain(metric), values });
    return window.Plotly.react(target, [{
      type: "parcoords",
      line: { color: values, colorscale: "Viridis", showscale: true, colorbar: { title: { text: plain(metric) } } },
      dimensions,
    }], layout({}), config);
  }

  function drawScatter(axes, chosen, metric, values) {
    paramLabel.hidden = false;
    const previous = paramSelect.value;
    paramSelect.replaceChildren(...axes.map((a) => new Option(a.label, a.label)));
    paramSelect.value = axes.some((a) => a.label === previous) ? previous : axes[0].label;
    const axis = axes.find((a) => a.label === paramSelect.value);
    return window.Plotly.react(target, [{
      type: "scatter", mode: "markers",
      x: axis.numeric ? axis.values : axis.raw, y: values,
      // The whole hover text is built here, so no user text reaches the template's %{...}.
      text: chosen.map((r, i) => [
        plain(r.name), `${plain(axis.label)} = ${plain(axis.raw[i])}`,
        `${plain(metric)} = ${Number(values[i]).toPrecision(5)}`,
      ].join("<br>")),
      hovertemplate: "%{text}<extra></extra>",
      marker: { size: 10, color: values, colorscale: "Viridis" },
    }], layout({
      xaxis: { title: { text: plain(axis.label) }, type: axis.numeric ? "linear" : "category" },
      yaxis: { title: { text: plain(metric) } },
    }), config);
  }

  async function draw() {
    const metric = metricSelect.value;
    // A NaN latest value arrives as null: such a run has no point on this view.
    const chosen = runs.filter((r) => r.metrics[metric] !== null && r.metrics[metric] !== undefined);
    const values = chosen.map((r) => r.metrics[metric]);
    const axes = paramAxes(chosen);
    const numeric = axes.filter((a) => a.numeric).length + 1; // + the metric's own axis
    const left = runs.length - chosen.length;
    note.textContent = left ? `${left} run(s) without a value of ${metric} are left out.` : "";
    target.dataset.drawn = "0";
    if (!axes.length || chosen.length < 2) {
      paramLabel.hidden = true;
      window.Plotly.purge(target);
      target.replaceChildren();
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = chosen.length < 2
        ? `Fewer than two runs have a value of ${metric}.`
        : "No param varies between these runs (or none was logged by all of them).";
      target.append(p);
      target.dataset.drawn = "none";
      return;
    }
    if (numeric >= MIN_NUMERIC_AXES) {
      paramLabel.hidden = true;
      await drawParcoords(axes, metric, values);
      target.dataset.drawn = "parcoords";
    } else {
      await drawScatter(axes, chosen, metric, values);
      target.dataset.drawn = "scatter";
    }
  }

  metricSelect.addEventListener("change", draw);
  paramSelect.addEventListener("change", draw);
  draw().catch((err) => window.Shipyard.toast(`Could not draw the chart: ${err.message || err}`, "error"));
})();
