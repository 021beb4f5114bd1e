// Shipyard UI: what every page shares. Pages call the JSON API through Shipyard.api,
// which sends the session's CSRF token, so actions pass the same checks as any client.
"use strict";

window.Shipyard = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  /** Call the API; resolves to the parsed JSON body (or null), rejects with the server's message. */
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrf();
    let payload;
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (!response.ok) {
      const message = data?.error?.message || `${response.status} ${response.statusText}`;
      const err = new Error(message);
      err.status = response.status;
      err.code = data?.error?.code;
      throw err;
    }
    return data;
  }

  /** A short message in the corner; kind "error" stays until clicked. */
  function toast(message, kind = "ok") {
    const box = document.getElementById("toasts");
    const el = document.createElement("div");
    el.className = `toast ${kind}`;
    el.setAttribute("role", kind === "error" ? "alert" : "status");
    el.textContent = message;
    el.addEventListener("click", () => el.remove());
    box.appendChild(el);
    if (kind !== "error") setTimeout(() => el.remove(), 4000);
  }

  /** The JSON a page embeds in <script type="application/json" id="page-data">. */
  function pageData(id = "page-data") {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  /** Encode one path segment (names may hold slashes). */
  const seg = (value) => encodeURIComponent(String(value));

  return { api, toast, pageData, seg };
})();
