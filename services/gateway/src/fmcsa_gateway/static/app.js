// The admin page's own script: sign-in, the bearer header on every htmx request, and live updates
// over server-sent events. No framework and nothing fetched from elsewhere.
(function () {
  "use strict";
  const KEY = "fmcsa_token";
  const app = document.getElementById("app");
  const signIn = document.getElementById("sign-in");
  const live = document.getElementById("live");
  let source = null;
  let pending = new Set();
  let flushTimer = null;
  let summaryTimer = null;

  // 422 (a refused input) and 409 (all in flight) carry a fragment with the reason: show it.
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "409", swap: true, error: false },
    { code: "422", swap: true, error: false },
    { code: "[45]..", swap: false, error: true },
  ];

  function token() { return sessionStorage.getItem(KEY); }

  function storeToken(value) {
    sessionStorage.setItem(KEY, value);
    // The cookie is read by the server for GET only (the EventSource cannot send a header).
    document.cookie = KEY + "=" + encodeURIComponent(value) + "; path=/; SameSite=Strict";
  }

  function clearToken() {
    sessionStorage.removeItem(KEY);
    document.cookie = KEY + "=; path=/; Max-Age=0; SameSite=Strict";
  }

  function toast(text, level) {
    const box = document.getElementById("toast");
    const p = document.createElement("p");
    p.className = "message " + (level || "error");
    p.textContent = text;
    box.replaceChildren(p);
  }

  document.body.addEventListener("htmx:configRequest", function (event) {
    const value = token();
    if (value) { event.detail.headers["Authorization"] = "Bearer " + value; }
  });

  document.body.addEventListener("htmx:responseError", function (event) {
    const xhr = event.detail.xhr;
    let detail = xhr.statusText;
    try { detail = JSON.parse(xhr.responseText).detail || detail; } catch (ignored) { /* not JSON */ }
    if (xhr.status === 401) { signOut("Your token was refused: " + detail); return; }
    toast(xhr.status + ": " + detail, xhr.status === 403 ? "warn" : "error");
  });

  async function whoami(value) {
    const answer = await fetch("/ui/whoami", { headers: { Authorization: "Bearer " + value } });
    if (!answer.ok) {
      let detail = answer.statusText;
      try { detail = (await answer.json()).detail || detail; } catch (ignored) { /* not JSON */ }
      throw new Error(detail);
    }
    return answer.json();
  }

  async function start(value) {
    const me = await whoami(value);
    storeToken(value);
    document.body.dataset.role = me.role;
    document.getElementById("who").textContent = me.subject + " (" + me.role + ")";
    document.getElementById("sign-out").hidden = false;
    signIn.hidden = true;
    app.hidden = false;
    window.fmcsaSignedIn = true;
    htmx.trigger(document.body, "signed-in");
    connect();
  }

  function signOut(reason) {
    clearToken();
    window.fmcsaSignedIn = false;
    if (source) { source.close(); source = null; }
    setLive(false);
    app.hidden = true;
    signIn.hidden = false;
    document.getElementById("sign-out").hidden = true;
    document.getElementById("who").textContent = "";
    document.getElementById("sign-in-error").textContent = reason || "";
  }

  function setLive(on) {
    live.classList.toggle("on", on);
    live.classList.toggle("off", !on);
    live.textContent = on ? "live" : "offline";
  }

  // Changes arrive after the status view applied them; rows of the same company are refreshed once.
  function refreshRows() {
    flushTimer = null;
    const dots = Array.from(pending);
    pending = new Set();
    for (const dot of dots) {
      const row = document.getElementById("row-" + dot);
      if (row) { htmx.ajax("GET", "/ui/companies/" + dot + "/row", { target: row, swap: "outerHTML" }); }
      const detail = document.getElementById("detail-" + dot);
      if (detail) { htmx.ajax("GET", "/ui/companies/" + dot, { target: "#detail", swap: "innerHTML" }); }
    }
  }

  function later(kind) {
    if (kind === "summary" && !summaryTimer) {
      summaryTimer = setTimeout(function () { summaryTimer = null; htmx.trigger(document.body, "refresh-summary"); }, 1000);
    }
    if (kind === "rows" && !flushTimer) { flushTimer = setTimeout(refreshRows, 150); }
  }

  function connect() {
    if (source) { source.close(); }
    source = new EventSource("/api/events");
    source.addEventListener("hello", function () { setLive(true); });
    source.addEventListener("change", function (event) {
      const change = JSON.parse(event.data);
      if (change.type === "company_registered" || change.type === "company_removed") {
        htmx.trigger(document.body, "companies-changed");
      } else if (change.dot) {
        pending.add(change.dot);
        later("rows");
      }
      later("summary");
    });
    source.addEventListener("resync", function () {
      htmx.trigger(document.body, "companies-changed");
      later("summary");
    });
    source.onerror = function () { setLive(false); };  // EventSource reconnects by itself
    source.onopen = function () { setLive(true); };
  }

  document.getElementById("sign-in-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    const value = document.getElementById("token").value.trim();
    try { await start(value); } catch (error) {
      document.getElementById("sign-in-error").textContent = "Not signed in: " + error.message;
    }
  });
  document.getElementById("sign-out").addEventListener("click", function () { signOut(""); });

  const saved = token();
  if (saved) { start(saved).catch(function (error) { signOut("Not signed in: " + error.message); }); }
})();
