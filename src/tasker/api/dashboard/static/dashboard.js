// Tasker dashboard: local times, and live updates over Server-Sent Events.
// Every page works without this file (reload to refresh); with it, a page that names a
// stream (<main data-stream>) re-renders its content from the server when events arrive.
"use strict";

function localTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (isNaN(when)) continue;
    el.title = el.getAttribute("datetime") + " (UTC)";
    el.textContent = when.toLocaleString();
  }
}

function follow(main) {
  const url = main.dataset.stream;
  const status = document.getElementById("live-status");
  if (!url || !window.EventSource) return;
  let pending = null;
  let updates = 0;
  const source = new EventSource(url);
  const refresh = async () => {
    pending = null;
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("live");
    if (!fresh) return;
    // Keep open <details> open across the swap.
    const open = new Set([...main.querySelectorAll("details[open]")].map(pathOf));
    main.innerHTML = fresh.innerHTML;
    for (const d of main.querySelectorAll("details")) if (open.has(pathOf(d))) d.open = true;
    localTimes(main);
    updates += 1;
    document.body.dataset.updates = String(updates);
  };
  source.onopen = () => { if (status) status.textContent = "live updates: on"; };
  source.onerror = () => { if (status) status.textContent = "live updates: reconnecting"; };
  source.onmessage = () => {
    if (pending === null) pending = setTimeout(refresh, 300);
  };
}

function pathOf(el) {
  const row = el.closest("[id],[data-step]");
  return (row ? row.id || row.dataset.step : "") + "/" + (el.querySelector("summary") || {}).textContent;
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  const main = document.getElementById("live");
  if (main) follow(main);
});
