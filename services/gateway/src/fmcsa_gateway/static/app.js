// The admin page's own script: sign-in, the bearer header on every htmx request, and live updates
// over server-sent events. No framework and nothing fetched from elsewhere. The page's Content Security
// Policy allows scripts from the gateway's files only (no inline code, no eval): every behaviour of the
// page's markup lives here. The token is kept in this closure only (never in storage or a script-readable
// cookie); the live stream's cookie is set by the server, HttpOnly, for /api/events alone.
(function () {
  "use strict";
  let current = null;  // the signed-in token, in memory only
  let ticker = null;
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

  function token() { return current; }

  // The EventSource cannot send a header: the server sets its cookie (HttpOnly, Path=/api/events).
  async function openSession(value) {
    const answer = await fetch("/ui/session", { method: "POST", headers: { Authorization: "Bearer " + value } });
    if (!answer.ok) { throw new Error("the live stream's cookie was refused (" + answer.status + ")"); }
  }

  function closeSession(value) {
    if (value) {
      fetch("/ui/session", { method: "DELETE", headers: { Authorization: "Bearer " + value } }).catch(function () {});
    }
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

  // Export links (`data-export`, `?format=csv|jsonl` with the list's filters) need the bearer header too:
  // fetch the file with it, then hand the browser the answer as a download named by Content-Disposition.
  document.body.addEventListener("click", async function (event) {
    const link = event.target.closest("a[data-export]");
    if (!link) { return; }
    event.preventDefault();
    const answer = await fetch(link.getAttribute("href"), { headers: { Authorization: "Bearer " + token() } });
    if (!answer.ok) { toast("export refused: " + answer.status, answer.status === 401 ? "warn" : "error"); return; }
    const named = /filename="([^"]+)"/.exec(answer.headers.get("Content-Disposition") || "");
    const url = URL.createObjectURL(await answer.blob());
    const save = document.createElement("a");
    save.href = url;
    save.download = named ? named[1] : "export";
    document.body.appendChild(save);
    save.click();
    save.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
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
    await openSession(value);
    current = value;
    document.body.dataset.role = me.role;
    document.getElementById("who").textContent = me.subject + " (" + me.role + ")";
    document.getElementById("sign-out").hidden = false;
    signIn.hidden = true;
    app.hidden = false;
    htmx.trigger(document.body, "signed-in");
    showView();
    // the deliveries, the scheduler and the upstream pace refresh every 10 s while signed in ("tick from:body")
    if (!ticker) { ticker = setInterval(function () { htmx.trigger(document.body, "tick"); }, 10000); }
    connect();
  }

  function signOut(reason) {
    closeSession(current);
    current = null;
    if (ticker) { clearInterval(ticker); ticker = null; }
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
      const carrier = document.getElementById("carrier-" + dot);
      if (carrier && !document.getElementById("carrier-view").hidden) {
        htmx.ajax("GET", "/ui/carriers/" + dot, { target: "#carrier", swap: "innerHTML" });
      }
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
    source.addEventListener("expired", function () {
      source.close();
      source = null;
      signOut("Your token has expired: sign in with a new one.");
    });
    // fell behind, or reconnected after more than the server keeps (Last-Event-ID): reload what is shown
    source.addEventListener("resync", function () {
      htmx.trigger(document.body, "companies-changed");
      later("summary");
      if (carrierOfPath()) { showView(); }
    });
    source.onerror = function () { setLive(false); };  // EventSource reconnects by itself
    source.onopen = function () { setLive(true); };
  }

  // The carrier page is this same shell at /carriers/<DOT> (the server answers it for a reload or a shared
  // link; the token is asked for again, as on /). Signed in, links between the list and a carrier page
  // switch the view in place and keep the URL in the history, so the token in memory is kept.
  function carrierOfPath() {
    const match = /^\/carriers\/([0-9]{1,8})\/?$/.exec(window.location.pathname);
    return match ? match[1] : null;
  }

  function showView() {
    const dot = carrierOfPath();
    document.getElementById("carrier-view").hidden = !dot;
    document.getElementById("admin-view").hidden = !!dot;
    document.title = dot ? "Carrier " + dot + " · fmcsa-sync" : "fmcsa-sync";
    if (dot && current) {
      document.getElementById("carrier").replaceChildren();
      htmx.ajax("GET", "/ui/carriers/" + dot, { target: "#carrier", swap: "innerHTML" });
    }
  }

  document.body.addEventListener("click", function (event) {
    const link = event.target.closest("a[data-carrier], a[data-nav]");
    if (!link || !current || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) { return; }
    event.preventDefault();
    window.history.pushState({}, "", link.getAttribute("href"));
    showView();
    window.scrollTo(0, 0);
  });
  window.addEventListener("popstate", showView);

  document.getElementById("sign-in-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    const value = document.getElementById("token").value.trim();
    try { await start(value); } catch (error) {
      document.getElementById("sign-in-error").textContent = "Not signed in: " + error.message;
    }
  });
  document.getElementById("sign-out").addEventListener("click", function () { signOut(""); });

  // A registration that went through clears its form.
  document.body.addEventListener("htmx:afterRequest", function (event) {
    const form = event.detail.elt;
    if (form && form.id === "register" && event.detail.successful) { form.reset(); }
  });

  // The new alert rule's form sends to /ui/alerts/<the name typed in it>.
  document.body.addEventListener("htmx:configRequest", function (event) {
    const form = event.detail.elt;
    if (form && form.dataset && form.dataset.pathFromName !== undefined) {
      event.detail.path = form.dataset.pathFromName + encodeURIComponent(form.elements.name.value);
    }
  });
})();
