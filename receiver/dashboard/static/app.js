// wavehook dashboard: live sections by short polling, relative times, Replay and logout. No dependencies.
"use strict";

(function () {
  const POLL_MS = 2000;
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  // The prefix the receiver is mounted under ("" at the root of its own server).
  const base = document.querySelector('meta[name="base-path"]').content;
  const liveBadge = document.getElementById("live");
  const toastBox = document.getElementById("toast");
  let toastTimer = null;
  let polling = null;

  function toast(message, isError) {
    toastBox.textContent = message;
    toastBox.classList.toggle("error", Boolean(isError));
    toastBox.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { toastBox.hidden = true; }, isError ? 8000 : 3500);
  }

  // "12 s ago", "3 min ago", "2 h ago", "4 d ago"; the exact local time stays in the title.
  function relative(seconds) {
    if (seconds < 5) return "just now";
    if (seconds < 60) return Math.round(seconds) + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
    return Math.floor(seconds / 86400) + " d ago";
  }

  function renderTimes(root) {
    const now = Date.now() / 1000;
    root.querySelectorAll("time[data-ts]").forEach(function (el) {
      const ts = parseFloat(el.dataset.ts);
      const local = new Date(ts * 1000).toLocaleString();
      if (el.hasAttribute("data-relative")) {
        el.textContent = relative(now - ts);
        el.title = local;
      } else {
        el.textContent = local;
      }
    });
  }

  // Statuses before a swap, so rows that changed can be flashed after it.
  function statuses(section) {
    const found = new Map();
    section.querySelectorAll("[data-id][data-status], [data-run][data-state]").forEach(function (el) {
      found.set(el.dataset.id || "run-" + el.dataset.run, el.dataset.status || el.dataset.state);
    });
    return found;
  }

  function swap(name, html, hash) {
    const section = document.querySelector('[data-section="' + name + '"]');
    if (!section || section.dataset.hash === hash) return;
    section.dataset.hash = hash;
    const before = statuses(section);
    section.innerHTML = html;
    renderTimes(section);
    section.querySelectorAll("[data-id][data-status], [data-run][data-state]").forEach(function (el) {
      const key = el.dataset.id || "run-" + el.dataset.run;
      const was = before.get(key);
      if (was !== undefined && was !== (el.dataset.status || el.dataset.state)) el.classList.add("flash");
    });
  }

  async function refresh() {
    if (!liveBadge) return;
    try {
      const response = await fetch(liveBadge.dataset.live, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.status === 401) {
        liveBadge.className = "live off";
        liveBadge.textContent = "logged out";
        stop();
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const data = await response.json();
      Object.keys(data.sections).forEach(function (name) {
        swap(name, data.sections[name], data.hashes[name]);
      });
      liveBadge.className = "live on";
      liveBadge.textContent = "live";
    } catch (err) {
      liveBadge.className = "live off";
      liveBadge.textContent = "reconnecting…";
    }
  }

  function start() {
    if (liveBadge && polling === null) polling = setInterval(refresh, POLL_MS);
  }
  function stop() {
    clearInterval(polling);
    polling = null;
  }

  async function post(url) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "X-CSRF-Token": csrfToken, Accept: "application/json" },
      credentials: "same-origin",
    });
    let data = {};
    try { data = await response.json(); } catch (err) { /* an empty answer */ }
    if (!response.ok) throw new Error(data.error || "HTTP " + response.status);
    return data;
  }

  document.addEventListener("click", async function (event) {
    const replay = event.target.closest("[data-replay]");
    if (replay) {
      if (replay.dataset.confirm && !window.confirm(replay.dataset.confirm)) return;
      replay.disabled = true;
      const label = replay.textContent;
      replay.textContent = "Replaying…";
      try {
        await post(replay.dataset.replay);
        toast("Replay queued");
        await refresh();
      } catch (err) {
        toast("Replay failed: " + err.message, true);
      } finally {
        replay.disabled = false;
        replay.textContent = label;
      }
      return;
    }
    if (event.target.closest("[data-logout]")) {
      try {
        await post(base + "/logout");
      } finally {
        window.location.assign(base + "/login");
      }
    }
  });

  document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.requestSubmit(); });
  });

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      stop();
    } else {
      refresh();
      start();
    }
  });

  renderTimes(document);
  setInterval(function () { renderTimes(document); }, 5000);
  start();
})();
