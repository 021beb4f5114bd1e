// Dataset version page: narrow the profile cards shown to the columns whose name matches,
// as the name is typed (the form itself asks the server for columns not shown).
"use strict";

(() => {
  const input = document.getElementById("column-filter");
  if (!input) return;
  const cards = Array.from(document.querySelectorAll(".column-profile"));
  input.addEventListener("input", () => {
    const wanted = input.value.trim().toLowerCase();
    for (const card of cards) {
      const name = (card.dataset.column || "").toLowerCase();
      card.hidden = wanted !== "" && !name.includes(wanted);
    }
  });
})();
