// Shipyard metric charts: one Plotly line chart per call, one trace per (run, metric) series.
//
// The server downsamples long histories (min and max of each bucket, so spikes stay
// visible); this file only fetches, smooths and draws. Pages include plotly.min.js and
// this file, then call:
//
//   ShipyardCharts.metricChart(element, {series: [{run, label, key, color}, ...], title, legend})
//
// (legend: true shows the legend even for one series, to name its run; color, an index
// into the palette, keeps a run's colour the same on every chart of a page.)
//
// The promise resolves once the chart is drawn (element.dataset.drawn = "1",
// element.dataset.series = trace count), or once an error message is shown in its place
// (element.dataset.error holds it); it never rejects, so a page with many charts keeps
// drawing the others. Each redraw (x axis, smoothing, raw values) bumps
// element.dataset.draws, which tests wait on.
"use strict";

window.ShipyardCharts = (() => {
  const DEFAULT_POINTS = 1000;
  const COLORS = ["#2f6fde", "#e4572e", "#17a398", "#f3a712", "#8e44ad",
                  "#4c9f38", "#d81b60", "#6d4c41", "#00838f", "#7f8c8d"];

  /** The API path of a run's metric; the key keeps its slashes (system/cpu_percent). */
  function metricPath(run, key) {
    const path = key.split("/").map(encodeURIComponent).join("/");
    return `/api/v1/runs/${encodeURIComponent(run)}/metrics/${path}`;
  }

  /** The API URL of a run's whole history of one metric (every point, as JSON). */
  function historyUrl(run, key) {
    return `${metricPath(run, key)}/history`;
  }

  /**
   * The API URL of a series. ``window`` ([first, last] step, or null) asks for that
   * range only.
   */
  function seriesUrl(run, key, xAxis, raw, window) {
    const points = raw ? 0 : DEFAULT_POINTS;
    const range = window ? `&start=${window[0]}&end=${window[1]}` : "";
    return `${metricPath(run, key)}/series?points=${points}&x=${xAxis}${range}`;
  }

  /**
   * Exponential moving average, debiased so that the first points are not pulled to 0.
   * weight 0 returns the values as they are; nulls (NaN/inf were stored as null) stay gaps.
   */
  function ema(values, weight) {
    if (!weight) return values;
    let last = 0;
    let n = 0;
    return values.map((v) => {
      if (v === null || v === undefined) return null;
      n += 1;
      last = last * weight + (1 - weight) * v;
      return last / (1 - Math.pow(weight, n));
    });
  }

  // SVG draws a few thousand points quickly and everywhere; past that (raw values) WebGL
  // keeps zoom and hover smooth, when the browser has it and the page loaded a build of
  // plotly.js that has it (run pages load the basic build, which has not).
  const GL_FROM = 5000;
  let glAvailable = null;
  function traceType(n) {
    if (n < GL_FROM) return "scatter";
    if (glAvailable === null) {
      try {
        glAvailable =
          !!document.createElement("canvas").getContext("webgl") &&
          !window.Plotly.validate([{ type: "scattergl" }], {});
      } catch (_) {
        glAvailable = false;
      }
    }
    return glAvailable ? "scattergl" : "scatter";
  }

  // Pages may load this file before plotly.min.js (both deferred), so that the data is
  // fetched while the browser is still compiling plotly.js; drawing waits for it.
  function plotlyReady() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    return new Promise((resolve, reject) => {
      const check = () =>
        window.Plotly ? resolve(window.Plotly) : reject(new Error("plotly.js is not loaded"));
      if (document.readyState === "loading") {
        // Deferred scripts have all run when DOMContentLoaded fires.
        document.addEventListener("DOMContentLoaded", check, { once: true });
      } else {
        window.addEventListener("load", check, { once: true });
      }
    });
  }

  // Plotly reads trace names and titles as a little HTML (a run named "<a href=...>"
  // would become a link): show them as text.
  const plain = (v) =>
    String(v).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

  /** A control row: x axis select, smoothing slider, raw checkbox, and a note on sampling. */
  function buildControls() {
    const bar = document.createElement("div");
    bar.className = "chart-controls";
    bar.innerHTML = `
      <label>X axis <select data-control="x">
        <option value="step">step</option><option value="time">time</option></select></label>
      <label>Smoothing <input data-control="smoothing" type="range" min="0" max="0.99" step="0.01" value="0">
        <output data-control="smoothing-value">0</output></label>
      <label><input data-control="raw" type="checkbox"> raw values</label>
      <span class="muted" data-control="note"></span>`;
    return bar;
  }

  /** Colors and fonts follow the page's own (light or dark) theme. */
  function themed(title, xAxis, traceCount, view, legend) {
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue("--fg").trim() || "#1d2330";
    const line = css.getPropertyValue("--line").trim() || "#e3e6ec";
    return {
      title: title ? { text: plain(title), font: { size: 14 }, x: 0.01, xanchor: "left" } : undefined,
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: fg, size: 12 },
      margin: { l: 55, r: 15, t: title || traceCount > 1 ? 36 : 12, b: 40 },
      height: 320,
      hovermode: "x unified",
      // One series needs no legend (the chart's heading names it) unless the page asks.
      showlegend: legend || traceCount > 1,
      legend: { orientation: "h", x: 1, xanchor: "right", y: 1.02, yanchor: "bottom" },
      xaxis: { title: { text: xAxis }, type: xAxis === "time" ? "date" : "linear",
               gridcolor: line, zeroline: false,
               ...(view.window ? { range: view.window, autorange: false } : {}) },
      yaxis: { gridcolor: line, zeroline: false, automargin: true,
               ...(view.yRange ? { range: view.yRange, autorange: false } : {}) },
    };
  }

  /**
   * Draw a chart of ``options.series`` in ``element``; see the header of this file.
   * Returns a Promise of the chart (``{element, redraw}``), or of null when it failed.
   */
  function metricChart(element, options) {
    const series = options.series || [];
    // window: the step range zoomed into (null: all of it); the server buckets just
    // that range, so zooming in reaches every logged point. yRange: a box zoom's y.
    const state = { x: "step", smoothing: 0, raw: false, window: null, yRange: null };
    const cache = new Map(); // "run|key|x|raw|window" -> response body, so smoothing never refetches

    element.replaceChildren();
    const controls = buildControls();
    if (series.length === 1) {
      // Every logged point, whatever the chart shows: one click from the chart.
      const link = document.createElement("a");
      link.dataset.control = "history";
      link.href = historyUrl(series[0].run, series[0].key);
      link.textContent = "all points (JSON)";
      controls.querySelector('[data-control="note"]').before(link);
    }
    const plot = document.createElement("div");
    plot.className = "chart-plot";
    const problem = document.createElement("p");
    problem.className = "error";
    problem.hidden = true;
    element.append(controls, problem, plot);
    const note = controls.querySelector('[data-control="note"]');

    /** One series' body, or an Error (a run without this metric must not hide the others). */
    function load(s) {
      const id = [s.run, s.key, state.x, state.raw, state.window].join("|");
      if (!cache.has(id)) {
        if (cache.size >= 64) cache.clear(); // zooming around must not grow it for good
        const url = seriesUrl(s.run, s.key, state.x, state.raw, state.window);
        const body = window.Shipyard.api("GET", url).catch((err) => {
          cache.delete(id); // try again on the next redraw
          return err instanceof Error ? err : new Error(String(err));
        });
        cache.set(id, body);
      }
      return cache.get(id);
    }

    function showProblem(message) {
      problem.textContent = message;
      problem.hidden = !message;
      if (message) element.dataset.error = message;
      else delete element.dataset.error;
    }

    function trace(s, data, i) {
      const smoothed = ema(data.y, state.smoothing);
      return {
        type: traceType(data.x.length),
        mode: "lines",
        name: plain(s.label || s.key),
        x: data.x,
        y: smoothed,
        customdata: data.y,
        line: { color: COLORS[(s.color ?? i) % COLORS.length], width: 1.5 },
        // Hover shows the raw value beside the smoothed one once smoothing is on.
        hovertemplate: state.smoothing ? "%{y:.5g} (raw %{customdata:.5g})" : "%{y:.5g}",
      };
    }

    function describe(bodies) {
      const total = bodies.reduce((sum, b) => sum + b.total, 0);
      const shown = bodies.reduce((sum, b) => sum + b.x.length, 0);
      const sampled = bodies.some((b) => b.downsampled);
      const where = state.window
        ? ` in steps ${state.window[0].toLocaleString()}–${state.window[1].toLocaleString()}`
        : "";
      if (!total) return state.window ? `no points${where}` : "no points logged";
      if (sampled) {
        const hint = state.x === "step" ? "; zoom in for every point" : "";
        return `${shown.toLocaleString()} of ${total.toLocaleString()} points${where} (min/max per bucket${hint})`;
      }
      return `${total.toLocaleString()} points${where}, every one`;
    }

    let latest = 0; // a slider dragged fast starts many redraws; only the last one draws
    async function redraw() {
      const mine = ++latest;
      element.dataset.drawn = "0";
      try {
        const [results, Plotly] = await Promise.all([Promise.all(series.map(load)), plotlyReady()]);
        if (mine !== latest) return chart;
        const failed = series.filter((s, i) => results[i] instanceof Error);
        const drawn = series
          .map((s, i) => [s, results[i]])
          .filter(([, body]) => !(body instanceof Error));
        if (!drawn.length) throw results[0];
        const traces = drawn.map(([s, body], i) => trace(s, body, i));
        await Plotly.react(plot, traces, themed(options.title, state.x, traces.length, state, !!options.legend), {
          responsive: true,
          displaylogo: false,
          modeBarButtonsToRemove: ["select2d", "lasso2d"],
        });
        note.textContent = describe(drawn.map(([, body]) => body));
        if (failed.length) {
          const why = results.find((r) => r instanceof Error).message;
          showProblem(`Not shown: ${failed.map((s) => s.label || s.run).join(", ")} (${why})`);
        } else {
          showProblem("");
        }
        followZoom();
        element.dataset.series = String(traces.length);
        element.dataset.draws = String(Number(element.dataset.draws || 0) + 1);
        element.dataset.drawn = "1";
        return chart;
      } catch (err) {
        if (mine === latest) showProblem(`Could not draw this chart: ${err.message || err}`);
        return null;
      }
    }

    const chart = { element, redraw };

    controls.querySelector('[data-control="x"]').addEventListener("change", (e) => {
      state.x = e.target.value;
      state.window = null; // a step window means nothing on the time axis
      state.yRange = null;
      redraw();
    });

    // Zoom and pan on the step axis fetch the new range; a double click (autorange)
    // goes back to the whole history. Plotly.react does not emit relayout events, so
    // a redraw never triggers another.
    let listening = false;
    function followZoom() {
      if (listening || !plot.on) return;
      listening = true;
      plot.on("plotly_relayout", (change) => {
        // The y range is the reader's on either axis: kept through redraws (smoothing),
        // dropped by a double click.
        const y0 = change["yaxis.range[0]"] ?? change["yaxis.range"]?.[0];
        const y1 = change["yaxis.range[1]"] ?? change["yaxis.range"]?.[1];
        const yChanged = y0 !== undefined && y1 !== undefined;
        if (change["yaxis.autorange"]) state.yRange = null;
        else if (yChanged) state.yRange = [y0, y1];
        if (state.x !== "step") return;
        if (change["xaxis.autorange"]) {
          state.window = null;
          state.yRange = null;
          redraw();
          return;
        }
        const x0 = change["xaxis.range[0]"] ?? change["xaxis.range"]?.[0];
        const x1 = change["xaxis.range[1]"] ?? change["xaxis.range"]?.[1];
        if (x0 === undefined || x1 === undefined) return; // y alone: already on screen
        state.window = [Math.floor(Math.min(x0, x1)), Math.ceil(Math.max(x0, x1))];
        if (!yChanged) state.yRange = null; // a zoom on x alone fits y to the new points
        redraw();
      });
    }
    const slider = controls.querySelector('[data-control="smoothing"]');
    slider.addEventListener("input", () => {
      state.smoothing = Number(slider.value);
      controls.querySelector('[data-control="smoothing-value"]').textContent = slider.value;
      redraw();
    });
    controls.querySelector('[data-control="raw"]').addEventListener("change", (e) => {
      state.raw = e.target.checked;
      redraw();
    });

    if (!series.length) {
      element.dataset.series = "0";
      return Promise.resolve(null);
    }
    return redraw();
  }

  return { metricChart, ema, seriesUrl, historyUrl };
})();
