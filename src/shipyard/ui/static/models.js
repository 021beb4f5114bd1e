// Model page: set, move and remove aliases through the JSON API (the same authorization
// check and audit as any client), then redraw the aliases from the model the API returns.
"use strict";

window.ShipyardModels = (() => {
  const data = Shipyard.pageData();
  if (!data || !data.model) return {};
  const base = `/api/v1/projects/${Shipyard.seg(data.project)}/models/${Shipyard.seg(data.model)}`;
  const versionHref = (v) =>
    `/projects/${Shipyard.seg(data.project)}/models/${Shipyard.seg(data.model)}/versions/${v}`;
  const writable = () => document.getElementById("alias-list")?.dataset.writable === "1";

  function tag(text) {
    const el = document.createElement("span");
    el.className = "tag alias";
    el.textContent = text;
    return el;
  }

  /** Redraw every place aliases show from ``aliases`` (alias -> version number). */
  function draw(aliases) {
    const names = Object.keys(aliases).sort();
    document.querySelectorAll("td.aliases[data-version]").forEach((cell) => {
      const v = Number(cell.dataset.version);
      cell.replaceChildren(...names.filter((a) => aliases[a] === v).map(tag));
    });
    const list = document.getElementById("alias-list");
    if (list) {
      list.replaceChildren(
        ...names.map((alias) => {
          const li = document.createElement("li");
          li.dataset.alias = alias;
          const link = document.createElement("a");
          link.href = versionHref(aliases[alias]);
          link.textContent = `v${aliases[alias]}`;
          li.append(tag(alias), " → ", link);
          if (writable()) {
            const remove = document.createElement("button");
            remove.type = "button";
            remove.className = "link delete-alias";
            remove.dataset.alias = alias;
            remove.textContent = "Remove";
            li.append(" ", remove);
          }
          return li;
        }),
      );
    }
    const none = document.getElementById("no-aliases");
    if (none) none.hidden = names.length > 0;
    const options = document.getElementById("alias-names");
    if (options) {
      options.replaceChildren(
        ...names.map((alias) => {
          const o = document.createElement("option");
          o.value = alias;
          return o;
        }),
      );
    }
  }

  async function refresh() {
    const model = await Shipyard.api("GET", base);
    draw(model.aliases);
    return model.aliases;
  }

  /** Point ``alias`` at ``version``; resolves to true when the server agreed. */
  async function setAlias(alias, version) {
    try {
      await Shipyard.api("PUT", `${base}/aliases/${Shipyard.seg(alias)}`, { version: Number(version) });
    } catch (err) {
      Shipyard.toast(`Could not set ${alias} → v${version}: ${err.message}`, "error");
      return false;
    }
    await refresh();
    Shipyard.toast(`${alias} → v${version}`, "ok");
    return true;
  }

  /** Remove ``alias``; resolves to true when the server agreed. */
  async function deleteAlias(alias) {
    try {
      await Shipyard.api("DELETE", `${base}/aliases/${Shipyard.seg(alias)}`);
    } catch (err) {
      Shipyard.toast(`Could not remove ${alias}: ${err.message}`, "error");
      return false;
    }
    await refresh();
    Shipyard.toast(`Removed ${alias}`, "ok");
    return true;
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("form.set-alias");
    if (!form) return;
    event.preventDefault();
    const input = form.elements.alias;
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      if (await setAlias(input.value.trim(), form.dataset.version)) input.value = "";
    } finally {
      button.disabled = false;
    }
  });

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button.delete-alias");
    if (!button) return;
    button.disabled = true;
    if (!(await deleteAlias(button.dataset.alias))) button.disabled = false;
  });

  return { setAlias, deleteAlias, refresh };
})();
