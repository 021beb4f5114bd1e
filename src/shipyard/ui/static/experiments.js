// Runs table. Sorting, filtering, columns and paging are plain links and forms (the
// server renders each view); this script keeps the runs picked for comparison across
// pages, filters and experiments of a project (in the tab's sessionStorage), keeps the
// "Compare selected" button honest (it needs at least two runs, at most MAX_PICKED),
// and, when the column chooser opens, swaps its list of the keys on this page for
// every key of the experiment (a query the page itself skips).
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
  const MAX_PICKED = Number(form.dataset.maxRuns) || 50; // what the compare page takes
  const button = document.getElementById("compare-button");
  const count = document.getElementById("selected-count");
  const clear = document.getElementById("clear-selection");
  const all = document.getElementById("pick-all");
  const boxes = () => Array.from(form.querySelectorAll('input[type=checkbox][name="run"]'));

  // The picked run ids of this project, oldest pick first; the compare form's action
  // names the project, so two projects never share a selection.
  const storageKey = `shipyard.compare:${new URL(form.action, location.href).pathname}`;
  function stored() {
    try {
      const ids = JSON.parse(sessionStorage.getItem(storageKey) || "[]");
      return Array.isArray(ids) ? ids.filter((id) => typeof id === "string") : [];
    } catch (_) {
      return [];
    }
  }
  let picked = stored();
  function save() {
    try {
      sessionStorage.setItem(storageKey, JSON.stringify(picked));
    } catch (_) {
      // Storage off or full: the selection still works on this page.
    }
  }

  const onPage = new Set(boxes().map((b) => b.value));
  boxes().forEach((b) => { b.checked = picked.includes(b.value); });

  function refresh() {
    const elsewhere = picked.filter((id) => !onPage.has(id)).length;
    const n = picked.length;
    button.disabled = n < 2 || n > MAX_PICKED;
    let text = n < 2
      ? (n === 1 ? "1 run selected: pick at least one more." : "Pick at least two runs.")
      : `${n} runs selected.`;
    if (elsewhere) text += ` (${elsewhere} on other pages)`;
    if (n > MAX_PICKED) text += ` Compare at most ${MAX_PICKED} at a time.`;
    count.textContent = text;
    if (clear) clear.hidden = n === 0;
    if (all) {
      const here = boxes().filter((b) => b.checked).length;
      const total = boxes().length;
      all.checked = here > 0 && here === total;
      all.indeterminate = here > 0 && here < total;
    }
  }

  function pick(id, on) {
    const known = picked.includes(id);
    if (on && !known) picked.push(id);
    if (!on && known) picked = picked.filter((p) => p !== id);
  }

  // Back and Forward may show this page from the browser's cache without running this
  // script again: picks made on other pages since must be read back.
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    picked = stored();
    boxes().forEach((b) => { b.checked = picked.includes(b.value); });
    refresh();
  });

  form.addEventListener("change", (event) => {
    picked = stored(); // the page may be an older copy the browser kept
    if (event.target === all) boxes().forEach((b) => { b.checked = all.checked; });
    boxes().forEach((b) => pick(b.value, b.checked));
    save();
    refresh();
  });
  if (clear) {
    clear.addEventListener("click", () => {
      picked = [];
      save();
      boxes().forEach((b) => { b.checked = false; });
      refresh();
    });
  }
  form.addEventListener("submit", (event) => {
    picked = stored();
    if (picked.length < 2 || picked.length > MAX_PICKED) {
      event.preventDefault();
      return;
    }
    // Runs picked on other pages travel as hidden fields beside this page's boxes.
    form.querySelectorAll("input[data-elsewhere]").forEach((el) => el.remove());
    for (const id of picked.filter((p) => !onPage.has(p))) {
      const hidden = document.createElement("input");
      hidden.type = "hidden";
      hidden.name = "run";
      hidden.value = id;
      hidden.dataset.elsewhere = "1";
      form.append(hidden);
    }
  });
  refresh();
})();
