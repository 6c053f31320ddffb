// The status page: /status.json every second (core/observe.c renders it).
"use strict";
(function () {
  var last = null, lastT = 0;
  function $(id) { return document.getElementById(id); }
  function text(id, v) { $(id).textContent = v; }
  function rows(tbody, list) {
    tbody.innerHTML = "";
    list.forEach(function (cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (c) {
        var td = document.createElement("td");
        td.textContent = c;
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
  }
  function services(s, name) {
    return (Array.isArray(s.services) ? s.services : []).filter(function (m) { return m.name === name; });
  }
  var RATES = [
    ["gate.in_packets", "packets in"], ["net.udp_out", "datagrams out"],
    ["gate.opened", "sessions opened"], ["gate.closed", "sessions closed"],
    ["gate.hellos", "handshakes"], ["gate.refused", "refused"],
    ["gate.auth_failures", "auth failures"], ["gate.replays", "replays"],
    ["gate.unknown_session", "unknown session"], ["lua.callbacks", "Lua callbacks"],
    ["lua.errors", "Lua errors"]
  ];
  function show(s) {
    var now = Date.now();
    text("who", s.node + (s.worker >= 0 ? " · worker " + s.worker : "") + " · v" + s.version +
      " · up " + s.uptime_s + " s");
    text("s-open", s.sessions.open);
    text("s-offline", s.sessions.offline);
    text("s-handshake", s.sessions.handshake);
    text("s-transport", s.sessions.udp + " / " + s.sessions.tcp);
    text("rtt", s.rtt_ms.n ? s.rtt_ms.p50.toFixed(1) + " / " + s.rtt_ms.p99.toFixed(1) : "–");
    text("loss", s.loss.n ? (100 * s.loss.p50).toFixed(1) + "% / " + (100 * s.loss.p99).toFixed(1) + "%" : "–");
    text("errors", s.counters["lua.errors"] || 0);
    var rooms = services(s, "moongate_rooms").reduce(function (a, m) { return a + m.value; }, 0);
    text("rooms", rooms);
    var dt = last ? (now - lastT) / 1000 : 0;
    rows($("rates").tBodies[0], RATES.map(function (r) {
      var v = s.counters[r[0]] || 0;
      var rate = last && dt > 0 ? ((v - (last.counters[r[0]] || 0)) / dt).toFixed(1) : "…";
      return [r[1], rate, "total " + v];
    }));
    var top = services(s, "moongate_room_tick_ms").sort(function (a, b) { return b.value - a.value; });
    rows($("top").tBodies[0], top.slice(0, 10).map(function (m) {
      var l = m.labels || {};
      return [l.room, l.mode, l.members, m.value.toFixed(3)];
    }));
    rows($("closes").tBodies[0], Object.keys(s.closes).map(function (k) { return ["code " + k, s.closes[k]]; }));
    rows($("lua").tBodies[0], (s.lua || []).map(function (c) {
      return [c.service, c.callback, c.runs, c.ms.toFixed(1), (1000 * c.ms / Math.max(1, c.runs)).toFixed(1)];
    }));
    last = s;
    lastT = now;
    var st = $("state");
    st.textContent = "live";
    st.className = "state live";
    document.body.dataset.ready = "1";
  }
  function tick() {
    fetch("/status.json", { cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(show).catch(function (e) {
      var st = $("state");
      st.textContent = "no answer: " + e.message;
      st.className = "state stale";
    });
  }
  tick();
  setInterval(tick, 1000);
})();
