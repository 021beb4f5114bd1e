// Runs table. Sorting, filtering, columns and paging are plain links and forms (the
// server renders each view); this script keeps the "Compare selected" button honest (it
// needs at least two runs) and, when the column chooser opens, swaps its list of the
// keys on this page for every key of the experiment (a query the page itself skips).
"use strict";

(() => {
  const chooser = document.getElementById("column-chooser");
  const allKeys = document.getElementById("all-keys");
  if (chooser && allKeys) {
    let loading = false;
    chooser.addEventListener("toggle", async () => {
      if (!chooser.open || loading) return;
      loading = true;
      try {
        const response = await fetch(allKeys.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
        if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
        const doc = new DOMParser().parseFromString(await response.text(), "text/html");
        const full = doc.getElementById("column-form");
        const current = document.getElementById("column-form");
        if (!full || !current) throw new Error("no column list in the answer");
        // Keep what was ticked while the list loaded.
        const ticked = new Set(Array.from(current.querySelectorAll("input[name=col]")).filter((b) => b.checked).map((b) => b.value));
        const unticked = new Set(Array.from(current.querySelectorAll("input[name=col]")).filter((b) => !b.checked).map((b) => b.value));
        for (const box of full.querySelectorAll("input[name=col]")) {
          if (ticked.has(box.value)) box.checked = true;
          if (unticked.has(box.value)) box.checked = false;
        }
        current.replaceWith(document.adoptNode(full));
      } catch (err) {
        loading = false;
        window.Shipyard.toast(`Could not list every key: ${err.message || err}`, "error");
      }
    });
  }

  const form = document.getElementById("compare-form");
  if (!form) return;
  const button = document.getElementById("compare-button");
  const count = document.getElementById("selected-count");
  const all = document.getElementById("pick-all");
  const boxes = () => Array.from(form.querySelectorAll('input[type=checkbox][name="run"]'));

  function refresh() {
    const picked = boxes().filter((b) => b.checked).length;
    button.disabled = picked < 2;
    count.textContent = picked < 2
      ? (picked === 1 ? "1 run selected: pick at least one more." : "Pick at least two runs.")
      : `${picked} runs selected.`;
    if (all) {
      const total = boxes().length;
      all.checked = picked > 0 && picked === total;
      all.indeterminate = picked > 0 && picked < total;
    }
  }

  form.addEventListener("change", (event) => {
    if (event.target === all) boxes().forEach((b) => { b.checked = all.checked; });
    refresh();
  });
  form.addEventListener("submit", (event) => {
    if (boxes().filter((b) => b.checked).length < 2) event.preventDefault();
  });
  refresh();
})();
