// toolrt operator dashboard: reads /api/fleet, /api/tools and /api/tools/{id} with the operator
// token from the URL fragment (#token=...), renders them with the DOM and inline SVG, and refreshes
// when /api/events announces a call (and every 10 s, for calls other processes make). Read-only.
// Every value from the API is put on the page as text (textContent), never as markup.
(function () {
  "use strict";

  var TOKEN_KEY = "toolrt-operator-token";
  var WINDOW_KEY = "toolrt-window";
  var POLL_MS = 10000;
  var VERSION_COLOURS = ["#2f6fde", "#d98a1c", "#8a4fd6", "#1f9d8a", "#c2417a", "#6b7686"];
  var SVG = "http://www.w3.org/2000/svg";
  var state = { token: null, window: "1h", timer: null, busy: false, again: false, query: "", listening: false, retry: null, typed: null };

  // -- small helpers ---------------------------------------------------------------------------
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        if (key === "text") node.textContent = attrs[key];
        else if (key === "className") node.className = attrs[key];
        else node.setAttribute(key, attrs[key]);
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }
  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else node.setAttribute(key, String(attrs[key]));
    });
    return node;
  }
  function fmtInt(n) { return n === null || n === undefined ? "\u2014" : Number(n).toLocaleString("en-US"); }
  function fmtPct(r) { return r === null || r === undefined ? "\u2014" : (r * 100).toFixed(1) + "%"; }
  function fmtRate(r) { return r === null || r === undefined ? "\u2014" : r < 10 ? r.toFixed(2) : r.toFixed(1); }
  function fmtMs(v) {
    if (v === null || v === undefined) return "\u2014";
    if (v < 10) return v.toFixed(2) + " ms";
    if (v < 1000) return v.toFixed(1) + " ms";
    return (v / 1000).toFixed(2) + " s";
  }
  function fmtTime(iso) {
    var d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleTimeString("en-GB", { hour12: false });
  }
  function fmtDateTime(iso) {
    var d = new Date(iso);
    return isNaN(d) ? iso : d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }
  function kpi(id, label, value, shown, sub, tone) {
    var card = el("div", { className: "kpi" + (tone ? " " + tone : ""), id: id, "data-value": value === null || value === undefined ? "" : String(value) },
      el("div", { className: "label", text: label }),
      el("div", { className: "value", text: shown }),
      sub ? el("div", { className: "sub", text: sub }) : null);
    return card;
  }
  function panel(title) {
    var box = el("section", { className: "panel" }, el("h2", { text: title }));
    for (var i = 1; i < arguments.length; i++) if (arguments[i]) box.appendChild(arguments[i]);
    return box;
  }
  function toolLink(row) {
    var name = row.name || row.tool_id;
    return el("a", { href: "#/tools/" + encodeURIComponent(row.tool_id), title: row.tool_id, "data-tool-id": row.tool_id, text: name });
  }

  // -- API ---------------------------------------------------------------------------------------
  function headers() {
    var h = { Accept: "application/json" };
    if (state.token) h.Authorization = "Bearer " + state.token;
    return h;
  }
  function api(path) {
    return fetch(path, { headers: headers(), cache: "no-store" }).then(function (response) {
      if (response.ok) return response.json();
      return response.json().catch(function () { return {}; }).then(function (body) {
        var error = new Error(body.error || response.statusText);
        error.status = response.status;
        throw error;
      });
    });
  }
  function withWindow(path) {
    return path + (path.indexOf("?") < 0 ? "?" : "&") + "window=" + encodeURIComponent(state.window);
  }

  // -- charts ------------------------------------------------------------------------------------
  // Bars of calls per minute (failures in red on top of successes), with a y scale and times.
  function rateChart(series, id) {
    var width = 720, height = 220, left = 44, right = 8, top = 10, bottom = 24;
    var chart = svg("svg", { viewBox: "0 0 " + width + " " + height, class: "chart", id: id, role: "img", preserveAspectRatio: "none" });
    var max = 0;
    series.forEach(function (p) { max = Math.max(max, p.per_minute); });
    var scale = niceMax(max);
    var plotW = width - left - right, plotH = height - top - bottom;
    for (var g = 0; g <= 4; g++) {
      var y = top + plotH - (plotH * g) / 4;
      chart.appendChild(svg("line", { x1: left, x2: width - right, y1: y, y2: y, stroke: "#e1e6ee" }));
      chart.appendChild(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", text: fmtRate((scale * g) / 4) }));
    }
    var step = plotW / Math.max(series.length, 1);
    series.forEach(function (p, i) {
      var x = left + i * step + step * 0.12, w = Math.max(step * 0.76, 1);
      var okRate = (p.executions - p.failures) / p.minutes, badRate = p.failures / p.minutes;
      var okH = scale ? (okRate / scale) * plotH : 0, badH = scale ? (badRate / scale) * plotH : 0;
      var group = svg("g", { "data-executions": p.executions, "data-failures": p.failures });
      group.appendChild(svg("title", { text: fmtTime(p.start) + ": " + p.executions + " calls, " + p.failures + " failed" }));
      if (okH > 0) group.appendChild(svg("rect", { x: x, y: top + plotH - okH - badH, width: w, height: okH, fill: "#2f6fde" }));
      if (badH > 0) group.appendChild(svg("rect", { x: x, y: top + plotH - badH, width: w, height: badH, fill: "#d64545" }));
      chart.appendChild(group);
    });
    if (series.length) {
      chart.appendChild(svg("text", { x: left, y: height - 6, text: fmtTime(series[0].start) }));
      chart.appendChild(svg("text", { x: width - right, y: height - 6, "text-anchor": "end", text: "now" }));
    }
    return chart;
  }
  // One line per version: calls per minute over the window.
  function versionChart(seriesByVersion, id) {
    var width = 720, height = 220, left = 44, right = 8, top = 10, bottom = 24;
    var chart = svg("svg", { viewBox: "0 0 " + width + " " + height, class: "chart", id: id, role: "img", preserveAspectRatio: "none" });
    var versions = Object.keys(seriesByVersion).sort(function (a, b) { return a - b; });
    var max = 0, length = 0, first = null;
    versions.forEach(function (v) {
      seriesByVersion[v].forEach(function (p) { max = Math.max(max, p.per_minute); });
      length = Math.max(length, seriesByVersion[v].length);
      if (!first && seriesByVersion[v].length) first = seriesByVersion[v][0].start;
    });
    var scale = niceMax(max), plotW = width - left - right, plotH = height - top - bottom;
    for (var g = 0; g <= 4; g++) {
      var y = top + plotH - (plotH * g) / 4;
      chart.appendChild(svg("line", { x1: left, x2: width - right, y1: y, y2: y, stroke: "#e1e6ee" }));
      chart.appendChild(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", text: fmtRate((scale * g) / 4) }));
    }
    versions.forEach(function (v, index) {
      var points = seriesByVersion[v].map(function (p, i) {
        var x = left + (length > 1 ? (plotW * i) / (length - 1) : plotW / 2);
        var y = top + plotH - (scale ? (p.per_minute / scale) * plotH : 0);
        return x.toFixed(1) + "," + y.toFixed(1);
      });
      chart.appendChild(svg("polyline", { points: points.join(" "), fill: "none", stroke: VERSION_COLOURS[index % VERSION_COLOURS.length], "stroke-width": 2, "data-version": v }));
    });
    if (first) {
      chart.appendChild(svg("text", { x: left, y: height - 6, text: fmtTime(first) }));
      chart.appendChild(svg("text", { x: width - right, y: height - 6, "text-anchor": "end", text: "now" }));
    }
    return chart;
  }
  function niceMax(max) {
    if (max <= 0) return 1;
    var power = Math.pow(10, Math.floor(Math.log10(max)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) if (max <= steps[i] * power) return steps[i] * power;
    return 10 * power;
  }
  function barList(entries, neutral, emptyText) {
    var box = el("div", { className: "bars" });
    if (!entries.length) { box.appendChild(el("p", { className: "muted", text: emptyText })); return box; }
    var max = entries[0][1] || 1;
    entries.forEach(function (entry) {
      var fill = el("div", { className: "fill" + (neutral ? " neutral" : "") });
      fill.style.width = Math.max((entry[1] / max) * 100, 2) + "%";
      box.appendChild(el("div", { className: "row", "data-key": entry[0] },
        el("span", { className: "name", title: entry[0], text: entry[0] }),
        el("div", { className: "track" }, fill),
        el("span", { className: "num", text: fmtInt(entry[1]) })));
    });
    return box;
  }
  function entriesOf(object) {
    return Object.keys(object || {}).map(function (k) { return [k, object[k]]; }).sort(function (a, b) { return b[1] - a[1]; });
  }

  // -- pages -------------------------------------------------------------------------------------
  function toolsTable(rows, id) {
    var body = el("tbody");
    rows.forEach(function (row) {
      body.appendChild(el("tr", { "data-tool-id": row.tool_id },
        el("td", null, toolLink(row)),
        el("td", { text: row.owner || "\u2014" }),
        el("td", null, el("span", { className: "pill", text: row.visibility || "\u2014" })),
        el("td", { className: "num", text: row.current_version ? "v" + row.current_version : "\u2014" }),
        el("td", { className: "num", "data-col": "executions", text: fmtInt(row.executions) }),
        el("td", { className: "num", text: fmtPct(row.failure_rate) })));
    });
    if (!rows.length) body.appendChild(el("tr", null, el("td", { colspan: "6", className: "muted", text: "No tools." })));
    return el("table", { id: id },
      el("thead", null, el("tr", null, el("th", { text: "Tool" }), el("th", { text: "Owner" }), el("th", { text: "Visibility" }),
        el("th", { className: "num", text: "Version" }), el("th", { className: "num", text: "Calls" }), el("th", { className: "num", text: "Failure rate" }))),
      body);
  }

  function renderFleet(fleet, tools) {
    var app = document.getElementById("app");
    var failures = fleet.outcomes.failed + fleet.outcomes.timed_out + fleet.outcomes.killed;
    var refusals = fleet.refusals.reduce(function (sum, r) { return sum + r.count; }, 0);
    var minutes = fleet.minutes;
    var windowText = minutes >= 1440 ? minutes / 1440 + " d" : minutes >= 60 ? minutes / 60 + " h" : minutes + " min";
    var kpis = el("div", { className: "kpis", id: "kpis" },
      kpi("kpi-tools", "Tools", fleet.tools, fmtInt(fleet.tools), fmtInt(fleet.inactive_tools) + " inactive"),
      kpi("kpi-agents", "Agents", fleet.agents, fmtInt(fleet.agents), fmtInt(fleet.callers) + " called tools"),
      kpi("kpi-executions", "Calls (" + windowText + ")", fleet.executions, fmtInt(fleet.executions), fmtRate(fleet.executions_per_minute) + " per minute"),
      kpi("kpi-failure", "Failure rate", fleet.failure_rate, fmtPct(fleet.failure_rate), fmtInt(failures) + " failed", fleet.failure_rate > 0.05 ? "bad" : null),
      kpi("kpi-p50", "Latency p50", fleet.p50_ms, fmtMs(fleet.p50_ms), "wall time"),
      kpi("kpi-p95", "Latency p95", fleet.p95_ms, fmtMs(fleet.p95_ms), "wall time"),
      kpi("kpi-cache", "Cache hit ratio", fleet.cache_hit_ratio, fmtPct(fleet.cache_hit_ratio), fmtInt(fleet.cache_hits) + " reused / " + fmtInt(fleet.cache_hits + fleet.cache_misses)),
      kpi("kpi-registrations", "Registrations", fleet.registrations, fmtInt(fleet.registrations), fmtInt(fleet.registrations_failed) + " refused"),
      kpi("kpi-refusals", "Refused requests", refusals, fmtInt(refusals), "bad input, no access"));
    var legend = el("div", { className: "legend" },
      el("span", null, el("span", { className: "swatch" }), "succeeded"),
      el("span", null, el("span", { className: "swatch" }), "failed"));
    legend.children[0].firstChild.style.background = "#2f6fde";
    legend.children[1].firstChild.style.background = "#d64545";
    var chartPanel = panel("Calls per minute" + (fleet.bucket_minutes > 1 ? " (" + fleet.bucket_minutes + "-minute points)" : ""),
      rateChart(fleet.series, "chart-rate"), legend);
    var side = el("div", null,
      panel("Error types", barList(entriesOf(fleet.error_types), false, "No failures in this window.")),
      el("div", { className: "spacer" }),
      panel("Isolation", barList(entriesOf(fleet.isolation), true, "No calls in this window.")));
    side.children[1].style.height = "16px";
    // A refresh must not take away what the operator is typing: the box keeps its current text.
    var typing = document.getElementById("tool-search");
    var search = el("input", { id: "tool-search", type: "search", placeholder: "Find a tool by name or description", value: typing ? typing.value : state.query });
    // Search as the operator types (a moment after the last key), and at once on Enter.
    search.addEventListener("input", function () {
      state.query = search.value.trim();
      if (state.typed) clearTimeout(state.typed);
      state.typed = setTimeout(function () { state.typed = null; refresh(); }, 300);
    });
    search.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") return;
      state.query = search.value.trim();
      refresh();
    });
    var toolsPanel = panel(state.query ? "Tools matching \u201c" + state.query + "\u201d" : "Busiest tools",
      el("div", { className: "search" }, search), toolsTable(tools.tools, "tools-table"));
    app.replaceChildren(kpis, el("div", { className: "grid" }, chartPanel, side), toolsPanel);
  }

  function renderTool(data) {
    var app = document.getElementById("app");
    var tool = data.tool, activity = data.activity;
    var windowCalls = Object.keys(activity.outcomes).reduce(function (s, k) { return s + activity.outcomes[k]; }, 0);
    var failures = (activity.outcomes.failed || 0) + (activity.outcomes.timed_out || 0) + (activity.outcomes.killed || 0);
    var counted = windowCalls - (activity.outcomes.cancelled || 0);
    var head = el("div", null,
      el("a", { href: "#/", text: "\u2190 Fleet" }),
      el("h1", { id: "tool-name", text: tool.name || tool.tool_id }),
      el("p", { className: "muted", text: tool.description || "" }),
      el("div", { className: "meta" },
        el("span", { className: "pill", text: "owner " + tool.owner }),
        el("span", { className: "pill", text: tool.visibility }),
        el("span", { className: "pill", text: tool.language }),
        el("span", { className: "pill", text: tool.status }),
        el("span", { className: "pill", id: "tool-current", text: "in force v" + tool.current_version }),
        el("span", { className: "pill", text: tool.tool_id })));
    var kpis = el("div", { className: "kpis" },
      kpi("tool-kpi-calls", "Calls in window", windowCalls, fmtInt(windowCalls)),
      kpi("tool-kpi-failure", "Failure rate", counted ? failures / counted : null, fmtPct(counted ? failures / counted : null), fmtInt(failures) + " failed", counted && failures / counted > 0.05 ? "bad" : null),
      kpi("tool-kpi-p50", "Latency p50", activity.p50_ms, fmtMs(activity.p50_ms)),
      kpi("tool-kpi-p95", "Latency p95", activity.p95_ms, fmtMs(activity.p95_ms)),
      kpi("tool-kpi-versions", "Versions", data.versions.length, fmtInt(data.versions.length)));
    // Traffic split: weights per version, or everything to the version in force.
    var weights = tool.traffic && Object.keys(tool.traffic).length ? tool.traffic : null;
    var split = el("div", { className: "split", id: "traffic-split" });
    var splitEntries = weights ? Object.keys(weights).map(function (v) { return [v, weights[v]]; }) : [[String(tool.current_version), 100]];
    splitEntries.forEach(function (entry, i) {
      var part = el("div", { title: "v" + entry[0] + ": " + entry[1] + "%", text: "v" + entry[0] + " " + entry[1] + "%" });
      part.style.width = entry[1] + "%";
      part.style.background = VERSION_COLOURS[(Number(entry[0]) - 1) % VERSION_COLOURS.length];
      split.appendChild(part);
      void i;
    });
    var splitPanel = panel("Traffic", split, el("p", { className: "muted", text: weights ? "Un-pinned calls split by weight." : "All un-pinned calls go to the version in force." + (tool.traffic_note ? " Last split ended: " + tool.traffic_note : "") }));
    var legend = el("div", { className: "legend" });
    Object.keys(activity.series).sort(function (a, b) { return a - b; }).forEach(function (v) {
      var swatch = el("span", { className: "swatch" });
      swatch.style.background = VERSION_COLOURS[(Number(v) - 1) % VERSION_COLOURS.length];
      legend.appendChild(el("span", null, swatch, "v" + v));
    });
    var chartPanel = panel("Calls per minute by version", versionChart(activity.series, "chart-versions"), legend);
    var versionsBody = el("tbody");
    var metricsByVersion = {};
    data.version_metrics.forEach(function (m) { metricsByVersion[m.version] = m; });
    data.versions.slice().reverse().forEach(function (v) {
      var m = metricsByVersion[v.version] || {};
      versionsBody.appendChild(el("tr", { "data-version": v.version, title: "created " + fmtDateTime(v.created_at) },
        el("td", null, "v" + v.version + (v.current ? " " : ""), v.current ? el("span", { className: "pill", text: "in force" }) : null),
        el("td", { className: "num", text: fmtInt(m.executions || 0) }),
        el("td", { className: "num", text: fmtPct(m.error_rate === undefined ? null : m.error_rate) }),
        el("td", { className: "num", text: fmtMs(m.p50_ms === undefined ? null : m.p50_ms) }),
        el("td", { className: "num", text: fmtMs(m.p95_ms === undefined ? null : m.p95_ms) }),
        el("td", { text: entriesOf(m.errors).map(function (e) { return e[0] + " \u00d7" + e[1]; }).join(", ") || "\u2014" })));
    });
    var versionsTable = el("table", { id: "versions-table" },
      el("thead", null, el("tr", null, el("th", { text: "Version" }), el("th", { className: "num", text: "Calls (all)" }),
        el("th", { className: "num", text: "Error rate" }), el("th", { className: "num", text: "p50" }), el("th", { className: "num", text: "p95" }), el("th", { text: "Errors" }))),
      versionsBody);
    var recentBody = el("tbody");
    data.recent.forEach(function (e) {
      recentBody.appendChild(el("tr", { "data-execution-id": e.execution_id },
        el("td", { text: fmtDateTime(e.created_at) }),
        el("td", { text: "v" + e.version }),
        el("td", { text: e.caller }),
        el("td", null, el("span", { className: "badge " + e.status, text: e.status.replace("_", " ") }), e.error_type ? el("div", { className: "muted", text: e.error_type }) : null),
        el("td", { className: "num", text: fmtMs(e.wall_ms) }),
        el("td", null, el("pre", { className: "out", text: e.stdout + (e.stdout_truncated ? "\u2026" : "") }))));
    });
    if (!data.recent.length) recentBody.appendChild(el("tr", null, el("td", { colspan: "6", className: "muted", text: "No calls yet." })));
    var recentTable = el("table", { id: "recent-table" },
      el("thead", null, el("tr", null, el("th", { text: "Started" }), el("th", { text: "Version" }), el("th", { text: "Caller" }), el("th", { text: "Status" }),
        el("th", { className: "num", text: "Duration" }), el("th", { text: "Output (stdout)" }))),
      recentBody);
    var spacer = el("div");
    spacer.style.height = "16px";
    var side = el("div", null, splitPanel, spacer, panel("Versions", versionsTable));
    app.replaceChildren(head, kpis, el("div", { className: "grid" }, chartPanel, side), panel("Recent calls", recentTable));
  }

  function renderError(error) {
    var app = document.getElementById("app");
    var hint = error.status === 401 ? "Open this page as /dashboard#token=YOUR_OPERATOR_TOKEN." : error.status === 403 ? "This token may not read operator views." : "";
    app.replaceChildren(el("div", { className: "error-box", id: "error" },
      el("strong", { text: "Cannot load the dashboard: " }), error.message || String(error), hint ? el("p", { text: hint }) : null));
  }

  // -- routing and refresh -----------------------------------------------------------------------
  function route() {
    var hash = location.hash.replace(/^#\/?/, "");
    if (hash.indexOf("tools/") === 0) return { page: "tool", id: decodeURIComponent(hash.slice(6)) };
    return { page: "fleet" };
  }
  function load() {
    var where = route();
    if (where.page === "tool") {
      return api(withWindow("/api/tools/" + encodeURIComponent(where.id))).then(renderTool);
    }
    var toolsPath = "/api/tools?limit=20" + (state.query ? "&q=" + encodeURIComponent(state.query) : "");
    return Promise.all([api(withWindow("/api/fleet")), api(withWindow(toolsPath))]).then(function (found) {
      renderFleet(found[0], found[1]);
    });
  }
  function refresh() {
    if (state.busy) { state.again = true; return; }
    state.busy = true;
    var focused = document.activeElement && document.activeElement.id === "tool-search";
    load().then(function () {
      document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString("en-GB", { hour12: false });
      document.body.setAttribute("data-loaded", String(Date.now()));
      if (focused) {
        var box = document.getElementById("tool-search");
        if (box) { box.focus(); box.setSelectionRange(box.value.length, box.value.length); }
      }
    }, renderError).then(function () {
      state.busy = false;
      if (state.again) { state.again = false; refresh(); }
    });
  }
  var soon = null;
  function refreshSoon() {
    if (soon) return;
    soon = setTimeout(function () { soon = null; refresh(); }, 250);
  }
  function setLive(on) {
    var badge = document.getElementById("live");
    badge.className = "live " + (on ? "on" : "off");
    badge.textContent = on ? "live" : "polling";
  }
  // Server-sent events read with fetch, so that the token goes in a header (EventSource cannot).
  function listen() {
    state.retry = null;
    state.listening = true;
    fetch("/api/events", { headers: headers(), cache: "no-store" }).then(function (response) {
      if (!response.ok || !response.body) throw new Error("no event stream");
      setLive(true);
      var reader = response.body.getReader(), decoder = new TextDecoder(), buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) throw new Error("event stream ended");
          buffer += decoder.decode(chunk.value, { stream: true });
          var end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            var message = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            if (/^event: executed$/m.test(message)) refreshSoon();
          }
          return pump();
        });
      }
      return pump();
    }).catch(function () {
      setLive(false);
      state.listening = false;
      state.retry = setTimeout(listen, 5000);
    });
  }

  // A token in the fragment (#token=...) is kept for this tab and dropped from the address, at
  // load and whenever the operator pastes one into the address later.
  function takeToken() {
    var match = location.hash.match(/token=([^&]+)/);
    if (match) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search + "#/");
    }
    state.token = sessionStorage.getItem(TOKEN_KEY);
    return Boolean(match);
  }

  function start() {
    takeToken();
    state.window = sessionStorage.getItem(WINDOW_KEY) || "1h";
    var picker = document.getElementById("window");
    picker.value = state.window;
    picker.addEventListener("change", function () {
      state.window = picker.value;
      sessionStorage.setItem(WINDOW_KEY, state.window);
      refresh();
    });
    window.addEventListener("hashchange", function () {
      if (takeToken() && !state.listening) {
        if (state.retry) clearTimeout(state.retry);
        listen();
      }
      window.scrollTo(0, 0);
      refresh();
    });
    refresh();
    listen();
    state.timer = setInterval(refresh, POLL_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
