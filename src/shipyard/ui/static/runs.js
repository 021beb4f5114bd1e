// Run page: draws one chart per metric key (metrics and system tabs) with ShipyardCharts,
// each when it first comes near the screen, so a run with hundreds of metrics stays quick.
// The filter box hides the charts whose key does not contain its text.
"use strict";

(() => {
  const grid = document.getElementById("charts");
  if (!grid || !window.ShipyardCharts) return;
  const cards = Array.from(grid.querySelectorAll(".chart-card"));

  function draw(card) {
    if (card.dataset.started) return;
    card.dataset.started = "1";
    const el = card.querySelector(".chart");
    const key = el.dataset.key;
    window.ShipyardCharts.metricChart(el, { series: [{ run: el.dataset.run, label: key, key }] });
  }

  // The first charts start at once (their data loads while plotly.js compiles); the
  // others when they come near the screen.
  const EAGER = 4;
  cards.slice(0, EAGER).forEach(draw);
  const later = cards.slice(EAGER);
  if ("IntersectionObserver" in window) {
    const seen = new IntersectionObserver(
      (items) => {
        for (const item of items) {
          if (item.isIntersecting) {
            seen.unobserve(item.target);
            draw(item.target);
          }
        }
      },
      { rootMargin: "400px 0px" },
    );
    later.forEach((card) => seen.observe(card));
  } else {
    later.forEach(draw);
  }

  const filter = document.getElementById("chart-filter");
  const count = document.getElementById("chart-count");
  const what = count ? count.textContent.replace(/^\d+\s*/, "") : "";
  filter?.addEventListener("input", () => {
    const text = filter.value.trim().toLowerCase();
    let shown = 0;
    for (const card of cards) {
      const match = !text || card.dataset.key.toLowerCase().includes(text);
      card.hidden = !match;
      if (match) shown += 1;
    }
    if (count) count.textContent = `${shown} of ${cards.length} ${what}`;
  });
})();
