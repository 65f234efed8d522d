/**
 * The UI's assets, shipped inside the package as modules (no CDN, no network, nothing to copy at build
 * time): one stylesheet and one small script. The pages work without the script; it only refreshes them
 * while runs are going.
 */

export const css = `
:root {
  --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #ffffff; --panel: #f6f8fa; --accent: #0969da;
  --ok: #1a7f37; --ok-bg: #dafbe1; --fail: #cf222e; --fail-bg: #ffebe9; --warn: #9a6700; --warn-bg: #fff8c5;
  --info: #0969da; --info-bg: #ddf4ff; --comp: #8250df; --comp-bg: #fbefff;
  color-scheme: light;
}
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "Open Sans", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, summary:focus-visible, select:focus-visible, input:focus-visible {
  outline: 3px solid var(--accent); outline-offset: 2px;
}
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 13px; }
.skip { position: absolute; left: -9999px; }
.skip:focus { left: 8px; top: 8px; background: var(--bg); padding: 4px 8px; z-index: 2; }
header.top { display: flex; align-items: center; gap: 28px; padding: 10px 28px; background: #1f2328; color: #fff; }
header.top .brand { font-weight: 700; font-size: 17px; color: #fff; text-decoration: none; letter-spacing: .2px; }
header.top .brand span { color: #7ee2a8; }
header.top nav ul { display: flex; gap: 4px; list-style: none; margin: 0; padding: 0; }
header.top nav a { color: #e6edf3; text-decoration: none; padding: 6px 12px; border-radius: 6px; display: inline-block; }
header.top nav a:hover { background: #32383f; }
header.top nav a[aria-current="page"] { background: #3d444d; color: #fff; font-weight: 600; }
header.top .store { margin-left: auto; color: #9198a1; font-size: 13px; }
main { padding: 20px 28px 48px; max-width: 1280px; }
h1 { font-size: 24px; margin: 4px 0 14px; }
h2 { font-size: 18px; margin: 28px 0 10px; }
p.lead { color: var(--muted); margin-top: -6px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .4px; color: var(--muted); background: var(--panel); font-weight: 600; }
tbody th { text-transform: none; letter-spacing: 0; font-size: 14px; color: var(--fg); background: none; }
td.mono, th.mono { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:hover { background: #f6f8fa; }
tr.total td { font-weight: 700; border-top: 2px solid var(--line); }
.badge { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12.5px; font-weight: 600; white-space: nowrap; }
.badge.ok { background: var(--ok-bg); color: var(--ok); }
.badge.fail { background: var(--fail-bg); color: var(--fail); }
.badge.warn { background: var(--warn-bg); color: var(--warn); }
.badge.info { background: var(--info-bg); color: var(--info); }
.badge.quiet { background: var(--panel); color: var(--muted); }
.ok { color: var(--ok); } .fail { color: var(--fail); } .warn { color: var(--warn); } .info { color: var(--info); } .quiet { color: var(--muted); }
form.filters { display: flex; flex-wrap: wrap; gap: 12px; align-items: end; padding: 12px 14px; background: var(--panel); border: 1px solid var(--line); border-radius: 8px; margin-bottom: 16px; }
form.filters label { display: flex; flex-direction: column; font-size: 12.5px; color: var(--muted); gap: 3px; font-weight: 600; }
form.filters input, form.filters select { font: inherit; font-size: 14px; padding: 5px 8px; border: 1px solid var(--line); border-radius: 6px; min-width: 150px; background: #fff; }
button, .button { font: inherit; font-size: 14px; padding: 6px 14px; border-radius: 6px; border: 1px solid #1f883d; background: #1f883d; color: #fff; cursor: pointer; text-decoration: none; display: inline-block; }
.button.secondary { background: #fff; color: var(--fg); border-color: var(--line); }
.pager { display: flex; gap: 10px; align-items: center; margin-top: 14px; color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; margin: 8px 0 18px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; background: var(--bg); }
.card .label { font-size: 12.5px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .4px; }
.card .value { font-size: 24px; font-weight: 700; font-variant-numeric: tabular-nums; }
.card .sub { font-size: 13px; color: var(--muted); }
.card.ok { border-left: 5px solid var(--ok); } .card.fail { border-left: 5px solid var(--fail); }
.card.warn { border-left: 5px solid var(--warn); } .card.info { border-left: 5px solid var(--info); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0 0 8px; }
dl.facts dt { color: var(--muted); font-weight: 600; }
dl.facts dd { margin: 0; }
.panel { border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; background: var(--panel); }
.commands pre { margin: 6px 0; padding: 8px 10px; background: #1f2328; color: #e6edf3; border-radius: 6px; overflow-x: auto; }
.commands p { margin: 4px 0; }
details { margin: 2px 0; }
details summary { cursor: pointer; color: var(--accent); }
details pre { white-space: pre-wrap; word-break: break-word; background: var(--panel); border: 1px solid var(--line); padding: 8px; border-radius: 6px; max-height: 320px; overflow: auto; }
.chart { width: 100%; height: auto; display: block; }
figure { margin: 0 0 8px; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 4px; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; font-size: 13px; color: var(--muted); margin: 6px 0; padding: 0; list-style: none; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 5px; vertical-align: -1px; }
.group { border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin-bottom: 12px; }
.group h3 { margin: 0 0 6px; font-size: 16px; display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
.group .count { font-size: 20px; font-weight: 800; }
.group p { margin: 4px 0; }
.empty { padding: 24px; text-align: center; color: var(--muted); border: 1px dashed var(--line); border-radius: 8px; }
.error { border-left: 5px solid var(--fail); background: var(--fail-bg); padding: 12px 16px; border-radius: 6px; }
.live { font-size: 12.5px; color: var(--muted); }
.live[data-state="on"]::before { content: "●"; color: var(--ok); margin-right: 5px; }
.finding { border-left: 4px solid var(--warn); padding: 6px 10px; background: var(--warn-bg); margin: 6px 0; border-radius: 4px; }
.scroll { overflow-x: auto; }
`

/**
 * Live refresh: while the page says it is live, ask the server every few seconds whether any run changed
 * since the page was rendered; if so, fetch the page again and swap its <main> (open <details> stay open).
 */
export const liveJs = `
(function () {
  var body = document.body;
  var since = body.getAttribute("data-live-since");
  if (!since) return;
  var status = document.querySelector(".live");
  if (status) { status.setAttribute("data-state", "on"); status.textContent = "live: refreshes while runs change"; }
  var busy = false;
  function tick() {
    if (busy || document.hidden) return;
    busy = true;
    fetch("/api/changes?since=" + encodeURIComponent(since), { headers: { accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (answer) {
        if (!answer.changed) { busy = false; return; }
        return fetch(location.href).then(function (r) { return r.text(); }).then(function (text) {
          var next = new DOMParser().parseFromString(text, "text/html");
          var open = Array.prototype.map.call(document.querySelectorAll("details[open][id]"), function (d) { return d.id; });
          var main = document.querySelector("main");
          var fresh = next.querySelector("main");
          if (main && fresh) main.innerHTML = fresh.innerHTML;
          open.forEach(function (id) { var d = document.getElementById(id); if (d) d.open = true; });
          status = document.querySelector(".live");
          if (status) { status.setAttribute("data-state", "on"); status.textContent = "live: refreshes while runs change"; }
          since = next.body.getAttribute("data-live-since") || String(answer.now);
          if (!next.body.getAttribute("data-live-since")) { body.removeAttribute("data-live-since"); clearInterval(timer); }
          busy = false;
        });
      })
      .catch(function () { busy = false; });
  }
  var timer = setInterval(tick, 2000);
})();
`
