/* agridrone web app: fills the server's page shells from /api/v1 with the session cookie.
 * Every text comes from the page's message catalogue (web/messages/<lang>.json); numbers
 * and dates follow the page's language (vi: decimal comma, dd/mm/yyyy). No request leaves
 * this origin. */
(function () {
  "use strict";

  var M = JSON.parse(document.getElementById("messages").textContent);
  var LANG = document.documentElement.lang;
  var LOCALE = LANG === "vi" ? "vi-VN" : "en-GB";
  var TZ = "Asia/Ho_Chi_Minh";
  /* A field's last spraying is flagged when more than this share of the field was missed,
   * or sprayed outside it (docs/web.md). */
  var GAP_WARN_PCT = 5;
  var OFF_TARGET_WARN_PCT = 2;
  /* How far back the list looks for a field's last spraying: the API's longest window
   * (366 days) at a time, three times. */
  var LOOKBACK_WINDOWS = 3;
  /* The list shows the first fields only (each card asks four questions of the API). */
  var MAX_CARDS = 100;
  var KINDS = ["covered", "overlap", "missed", "off_target", "no_spray"];
  var M2_PER_HA = 10000;
  var M2_PER_SAO = 360;
  /* The fleet map draws the cooperative's first fields only (by id), under the tracks. */
  var FLEET_FIELDS = 2000;

  function t(key, vars) {
    var s = M[key] || key;
    Object.keys(vars || {}).forEach(function (k) {
      s = s.replace("{" + k + "}", vars[k]);
    });
    return s;
  }

  function num(x, digits) {
    return new Intl.NumberFormat(LOCALE, {
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    }).format(x);
  }

  /* "2025-11-28T08:01:02+07:00" or "2025-11-28" -> "28/11/2025" (the API's local day). */
  function showDay(iso) {
    var m = /^(\d{4})-(\d{2})-(\d{2})/.exec(iso || "");
    return m ? m[3] + "/" + m[2] + "/" + m[1] : "";
  }

  /* "28/11/2025" -> "2025-11-28", or null when it is no date. */
  function parseDay(text) {
    var m = /^\s*(\d{1,2})\/(\d{1,2})\/(\d{4})\s*$/.exec(text || "");
    if (!m) return null;
    var iso = m[3] + "-" + ("0" + m[2]).slice(-2) + "-" + ("0" + m[1]).slice(-2);
    var d = new Date(iso + "T00:00:00Z");
    return isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== iso ? null : iso;
  }

  function today() {
    return new Intl.DateTimeFormat("en-CA", {
      timeZone: TZ,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
    }).format(new Date());
  }

  function addDays(isoDay, n) {
    var d = new Date(isoDay + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function setStatus(text, isError) {
    var status = document.getElementById("status");
    if (!status) return;
    status.textContent = text;
    status.hidden = !text;
    status.className = isError ? "status alert" : "status";
    if (isError) status.setAttribute("role", "alert");
  }

  /* The oldest answer shown from the service worker's copy (no signal), as a Date. */
  var offlineSince = null;

  function age(ms) {
    var minutes = Math.max(1, Math.round(ms / 60000));
    if (minutes < 120) return t("minutes", { n: minutes });
    var hours = Math.round(minutes / 60);
    if (hours < 48) return t("hours", { n: hours });
    return t("days", { n: Math.round(hours / 24) });
  }

  function noteOffline(r) {
    if (!r.headers.get("X-Agd-Offline")) return;
    showOffline(new Date(r.headers.get("Date") || Date.now()));
  }

  /* A page read from the service worker's copy says so on its <html> (sw.js), with the
   * Date of that copy: its answers are that old. */
  function notePageOffline() {
    var kept = document.documentElement.getAttribute("data-agd-offline");
    if (kept === null) return;
    var when = new Date(kept);
    showOffline(isNaN(when.getTime()) ? new Date() : when);
  }

  function showOffline(when) {
    if (offlineSince && offlineSince <= when) return;
    offlineSince = when;
    var parts = new Intl.DateTimeFormat("en-CA", {
      timeZone: TZ,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    }).format(when);
    var shown = showDay(parts.slice(0, 10)) + " " + parts.slice(-5);
    var banner = document.getElementById("offline");
    if (!banner) {
      banner = el("p", { id: "offline", class: "offline", role: "status" });
      document.getElementById("main").prepend(banner);
    }
    banner.textContent = t("offline", { time: shown, age: age(Date.now() - when.getTime()) });
  }

  function api(path) {
    return fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin" }).then(
      function (r) {
        noteOffline(r);
        if (r.status === 401) {
          setStatus(t("session_ended"), true);
          window.location.assign("/login");
          throw new Error("401");
        }
        if (!r.ok) {
          var e = new Error(String(r.status));
          e.status = r.status;
          throw e;
        }
        return r.json();
      }
    );
  }

  function q(params) {
    return Object.keys(params)
      .map(function (k) {
        return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]);
      })
      .join("&");
  }

  /* The local day (yyyy-mm-dd) of the field's last flight, or null. The windows are asked
   * for at once (a slow connection pays one round trip, not three). */
  function lastFlightDay(fieldId) {
    var ends = [];
    var to = addDays(today(), 1);
    for (var i = 0; i < LOOKBACK_WINDOWS; i++) {
      ends.push(to);
      to = addDays(to, -366);
    }
    return Promise.all(
      ends.map(function (end) {
        var params = { field: fieldId, from: addDays(end, -366), to: end, limit: 5000 };
        return api("/api/v1/flights?" + q(params));
      })
    ).then(function (answers) {
      for (var k = 0; k < answers.length; k++) {
        var flights = answers[k].flights || [];
        if (flights.length) return flights[flights.length - 1].start.slice(0, 10);
      }
      return null;
    });
  }

  function coverageOf(fieldId, from, to, format) {
    var params = { from: from, to: to };
    if (format) params.format = format;
    return api("/api/v1/fields/" + encodeURIComponent(fieldId) + "/coverage?" + q(params));
  }

  function cropName(crop) {
    if (!crop) return "—";
    return M["crop_" + crop] || crop;
  }

  function areaText(ha, sao) {
    return num(ha, 2) + " " + t("ha") + " · " + num(sao, 1) + " " + t("sao");
  }

  function warnings(c) {
    var out = [];
    if (!c || !c.field_ha) return out;
    var gaps = (100 * c.missed_ha) / c.field_ha;
    var off = (100 * c.off_target_ha) / c.field_ha;
    if (gaps > GAP_WARN_PCT) out.push(t("warn_gaps", { pct: num(gaps, 1) }));
    if (off > OFF_TARGET_WARN_PCT) out.push(t("warn_off_target", { pct: num(off, 1) }));
    return out;
  }

  /* --- compliance flags (docs/diary.md) --- */

  /* A flag's short name in the page's language (``bad_…`` details share one). */
  function flagName(code) {
    var key = "flag_" + (/^bad_/.test(code) ? "bad_detail" : code);
    return M[key] || code;
  }

  function flagNames(flags) {
    var seen = {};
    flags.forEach(function (f) {
      seen[flagName(f.code)] = true;
    });
    return Object.keys(seen).join(", ");
  }

  /* Run ``work`` over ``items``, at most ``n`` at a time. */
  function pool(items, n, work) {
    var i = 0;
    function next() {
      if (i >= items.length) return Promise.resolve();
      var item = items[i++];
      return work(item).then(next, next);
    }
    var runners = [];
    for (var k = 0; k < Math.min(n, items.length); k++) runners.push(next());
    return Promise.all(runners);
  }

  /* --- "Ruộng của tôi" ---------------------------------------------------------------- */

  function fieldsPage() {
    var list = document.getElementById("fields");
    api("/api/v1/fields?limit=" + MAX_CARDS)
      .then(function (all) {
        var fields = all.filter(function (f) {
          return f.kind === "field";
        });
        setStatus(fields.length ? "" : t("no_fields"));
        var cards = fields.map(function (f) {
          var last = el("dd", { class: "last", text: t("loading") });
          var card = el("li", { class: "field-card", "data-field": f.id }, [
            el("h2", {}, [el("a", { href: "/fields/" + encodeURIComponent(f.id), text: f.name || f.id })]),
            el("dl", {}, [
              el("div", {}, [el("dt", { text: t("crop") }), el("dd", { class: "crop", text: cropName(f.crop) })]),
              el("div", {}, [
                el("dt", { text: t("area") }),
                el("dd", { class: "area", text: areaText(f.area_ha, f.area_sao) }),
              ]),
              el("div", {}, [el("dt", { text: t("last_spraying") }), last]),
            ]),
          ]);
          list.appendChild(card);
          return { field: f, card: card, last: last };
        });
        return pool(cards, 4, function (c) {
          return lastFlightDay(c.field.id)
            .then(function (day) {
              if (!day) {
                c.last.textContent = t("never_sprayed");
                return null;
              }
              return coverageOf(c.field.id, day, addDays(day, 1)).then(function (cov) {
                var k = cov.coverage;
                c.last.textContent = "";
                c.last.appendChild(el("span", { class: "date", text: showDay(day) }));
                c.last.appendChild(document.createTextNode(" · " + t("coverage") + " "));
                c.last.appendChild(el("span", { class: "coverage-pct", text: num(k.coverage_pct, 1) + " %" }));
                var warns = warnings(k);
                warns.forEach(function (w) {
                  c.card.appendChild(el("p", { class: "warn", role: "note", text: "⚠ " + w }));
                });
                var flags = cov.flags || [];
                if (flags.length) {
                  var badge = t("flags_badge", { n: flags.length, names: flagNames(flags) });
                  c.card.appendChild(
                    el("p", { class: "warn flag-badge", role: "note", "data-flags": String(flags.length) }, [
                      el("a", { href: "/fields/" + encodeURIComponent(c.field.id), text: "⚠ " + badge }),
                    ])
                  );
                }
                if (!warns.length && !flags.length) {
                  c.card.appendChild(el("p", { class: "ok", text: "✓ " + t("ok_spraying") }));
                }
                return null;
              });
            })
            .catch(function (e) {
              c.last.textContent = t("error_load", { status: e.status || "?" });
            });
        });
      })
      .catch(function (e) {
        if (e.message !== "401") setStatus(t("error_load", { status: e.status || "?" }), true);
      });
  }

  /* --- one field ------------------------------------------------------------------------ */

  /* Area in m² of a GeoJSON polygon's rings (lon/lat) on a local plane: exact enough for
   * a strip of a field (the API's own areas are exact). */
  function ringArea(ring, lat0) {
    var R = 6371008.8;
    var kx = (Math.PI / 180) * R * Math.cos((lat0 * Math.PI) / 180);
    var ky = (Math.PI / 180) * R;
    var s = 0;
    for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      s += ring[j][0] * kx * (ring[i][1] * ky) - ring[i][0] * kx * (ring[j][1] * ky);
    }
    return Math.abs(s / 2);
  }

  function polygonArea(rings) {
    var lat0 = rings[0][0][1];
    var a = ringArea(rings[0], lat0);
    for (var i = 1; i < rings.length; i++) a -= ringArea(rings[i], lat0);
    return a;
  }

  /* A MultiPolygon feature as one feature per polygon (each missed strip on its own). */
  function parts(feature) {
    var g = feature.geometry;
    var polys = g.type === "MultiPolygon" ? g.coordinates : [g.coordinates];
    return polys.map(function (p) {
      return {
        type: "Feature",
        properties: { kind: feature.properties.kind, area_m2: polygonArea(p) },
        geometry: { type: "Polygon", coordinates: p },
      };
    });
  }

  /* The answers the server wrote into the page (web/firstview.py): the field, the window
   * and the coverage as JSON and GeoJSON, or {error: status}; null on a page without. */
  function firstView() {
    var island = document.getElementById("first-view");
    return island ? JSON.parse(island.textContent) : null;
  }

  /* Call ``done`` once the stylesheets loaded without blocking the first view (Leaflet's)
   * apply: the map is drawn with them. */
  function whenStyled(done) {
    var waiting = [].filter.call(document.querySelectorAll("link[data-async-css]"), function (l) {
      return l.media === "print";
    });
    var left = waiting.length;
    if (!left) return done();
    waiting.forEach(function (l) {
      function one() {
        if (--left === 0) done();
      }
      l.addEventListener("load", one);
      l.addEventListener("error", one);
    });
  }

  function fieldPage() {
    var body = document.body;
    var fieldId = body.getAttribute("data-field");
    var tiles = body.getAttribute("data-tiles");
    var params = new URLSearchParams(window.location.search);
    var fromInput = document.getElementById("from");
    var toInput = document.getElementById("to");
    var mapBox = document.getElementById("map");

    var from = params.get("from");
    var to = params.get("to");

    function showField(feature, answers) {
      var p = feature.properties;
      document.getElementById("title").textContent = p.name || p.id;
      document.title = (p.name || p.id) + " · agridrone";
      fromInput.value = showDay(from);
      toInput.value = showDay(addDays(to, -1));
      var last = addDays(to, -1);
      var days = from === last ? showDay(from) : showDay(from) + " – " + showDay(last);
      setStatus(days + " · " + cropName(p.crop) + " · " + areaText(p.area_ha, p.area_sao));
      var map = drawMap(mapBox, tiles, feature, answers[1]);
      legend(answers[0].coverage);
      flagList(answers[0].flags || [], map.map);
      flights(answers[0].flights, replayer(map, mapBox));
    }

    document.getElementById("range").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var from = parseDay(fromInput.value);
      var last = parseDay(toInput.value);
      if (!from || !last) return;
      var next = new URLSearchParams({ from: from, to: addDays(last, 1) });
      window.location.search = next.toString();
    });

    /* The server answered already: draw its answers (or leave its message) as they are. */
    var first = firstView();
    if (first) {
      if (first.error) return;
      from = first.from;
      to = first.to;
      whenStyled(function () {
        showField(first.field, [first.coverage, first.geojson]);
      });
      return;
    }

    /* The outline and the last flight's day at once (one round trip on a slow network). */
    var dayPromise =
      from && to
        ? Promise.resolve(null)
        : lastFlightDay(fieldId).then(function (day) {
            from = day || today();
            to = addDays(from, 1);
            return null;
          });
    Promise.all([api("/api/v1/fields/" + encodeURIComponent(fieldId)), dayPromise])
      .then(function (first) {
        var feature = first[0];
        return Promise.all([
          coverageOf(fieldId, from, to),
          coverageOf(fieldId, from, to, "geojson"),
        ]).then(function (answers) {
          showField(feature, answers);
        });
      })
      .catch(function (e) {
        if (e.message === "401") return;
        ["map", "range", "legend-box", "flags-box", "flights-box"].forEach(function (id) {
          document.getElementById(id).hidden = true;
        });
        var text = e.status === 404 ? t("field_not_found") : t("error_load", { status: e.status || "?" });
        setStatus(text, true);
      });
  }

  var STYLE = {
    field: { color: "#1b3a1b", weight: 2, fill: false },
    covered: { color: "#2e7d32", weight: 0, fillColor: "#43a047", fillOpacity: 0.55 },
    overlap: { color: "#e65100", weight: 0, fillColor: "#fb8c00", fillOpacity: 0.7 },
    missed: { color: "#b71c1c", weight: 1, fillColor: "#e53935", fillOpacity: 0.75 },
    off_target: { color: "#4a148c", weight: 0, fillColor: "#8e24aa", fillOpacity: 0.6 },
    no_spray: { color: "#424242", weight: 1, dashArray: "4 3", fillColor: "#9e9e9e", fillOpacity: 0.5 },
  };

  function style(kind) {
    var s = Object.assign({}, STYLE[kind]);
    s.className = "layer-" + kind;
    return s;
  }

  function drawMap(box, tiles, feature, coverage) {
    var L = window.L;
    /* The server's drawing (web/firstview.py) gives way to the map, in the same box. */
    var drawn = box.querySelector("svg.first-view");
    if (drawn) box.removeChild(drawn);
    var map = L.map(box, { attributionControl: !!tiles, zoomSnap: 0.25 });
    if (tiles) L.tileLayer(tiles, { maxZoom: 21 }).addTo(map);
    var outline = L.geoJSON(feature, { style: style("field"), interactive: false });
    KINDS.forEach(function (kind) {
      var features = (coverage.features || []).filter(function (f) {
        return f.properties.kind === kind;
      });
      if (!features.length) return;
      var shown = kind === "missed" ? [].concat.apply([], features.map(parts)) : features;
      L.geoJSON({ type: "FeatureCollection", features: shown }, {
        style: style(kind),
        interactive: kind === "missed",
        onEachFeature: function (f, layer) {
          if (kind !== "missed") return;
          var m2 = f.properties.area_m2;
          layer.bindPopup(t("missed_strip", { ha: num(m2 / M2_PER_HA, 3), m2: num(m2, 0) }));
        },
      }).addTo(map);
    });
    outline.addTo(map);
    map.fitBounds(outline.getBounds(), { padding: [12, 12] });
    return { map: map, bounds: outline.getBounds() };
  }

  /* The flags of the shown days: date, name and message; where a flag has a place, it is
   * drawn on the map (dashed red; a tap shows its message). */
  function flagList(flags, map) {
    var L = window.L;
    var list = document.getElementById("flags");
    list.textContent = ""; // the server's first view listed them already: drawn afresh
    if (!flags.length) {
      list.appendChild(el("li", { class: "none", text: t("no_flags") }));
      return;
    }
    flags.forEach(function (f) {
      var message = LANG === "vi" ? f.message_vi : f.message_en;
      var item = el("li", { class: "flag", "data-code": f.code }, [
        el("span", { class: "flag-date", text: showDay(f.date) }),
        el("strong", { class: "flag-name", text: flagName(f.code) }),
        el("span", { class: "flag-text", text: message }),
      ]);
      if (f.where) {
        item.classList.add("placed");
        item.prepend(el("span", { class: "swatch swatch-flag", title: t("flag_place"), "aria-hidden": "true" }));
        L.geoJSON(f.where, {
          style: { className: "flag-where", color: "#b71c1c", weight: 2, dashArray: "5 4", fillOpacity: 0.08 },
          pointToLayer: function (p, latlng) {
            return L.circleMarker(latlng, { radius: 3, className: "flag-point", color: "#b71c1c" });
          },
        })
          .bindPopup(flagName(f.code) + ": " + message)
          .addTo(map);
      }
      list.appendChild(item);
    });
  }

  function legend(c) {
    var list = document.getElementById("legend");
    list.textContent = "";
    var rows = [["field", c.field_ha]].concat(
      KINDS.map(function (k) {
        return [k, c[k + "_ha"]];
      })
    );
    rows.forEach(function (r) {
      var ha = r[1] || 0;
      list.appendChild(
        el("li", { "data-kind": r[0] }, [
          el("span", { class: "swatch swatch-" + r[0], "aria-hidden": "true" }),
          el("span", { class: "label", text: t("layer_" + r[0]) }),
          el("span", {
            class: "value",
            text: num(ha, 3) + " " + t("ha") + " · " + num((ha * M2_PER_HA) / M2_PER_SAO, 1) + " " + t("sao"),
          }),
        ])
      );
    });
    list.appendChild(
      el("li", { class: "total" }, [
        el("span", { class: "label", text: t("coverage") }),
        el("span", { class: "value coverage-pct", text: num(c.coverage_pct, 1) + " %" }),
      ])
    );
  }

  function flights(parts, replay) {
    var box = document.getElementById("flights");
    box.textContent = "";
    if (!parts.length) {
      box.appendChild(el("p", { text: t("no_flights") }));
      return;
    }
    var rows = parts.map(function (f) {
      var lpha = f.covered_ha > 0 ? f.applied_l / f.covered_ha : 0;
      return el("tr", { "data-flight": f.id }, [
        el("td", { text: when(f) }),
        el("td", { text: f.drone }),
        el("td", { class: "num", text: num(f.applied_l, 1) }),
        el("td", { class: "num", text: num(lpha, 1) }),
        el("td", { class: "act" }, [
          el(
            "button",
            { type: "button", class: "replay-btn", "aria-label": t("replay_flight", { time: when(f) }) },
            ["▶"]
          ),
        ]),
      ]);
    });
    box.addEventListener("click", function (ev) {
      var button = ev.target.closest && ev.target.closest(".replay-btn");
      if (!button) return;
      var row = button.closest("tr");
      var id = row.getAttribute("data-flight");
      [].forEach.call(box.querySelectorAll("tr.replaying"), function (r) {
        r.classList.remove("replaying");
      });
      row.classList.add("replaying");
      replay(parts.filter(function (f) { return f.id === id; })[0]);
    });
    box.appendChild(
      el("table", { class: "flights" }, [
        el("thead", {}, [
          el("tr", {}, [
            el("th", { scope: "col", text: t("date") }),
            el("th", { scope: "col", text: t("drone") }),
            el("th", { scope: "col", class: "num", text: t("litres") }),
            el("th", { scope: "col", class: "num", text: t("l_per_ha") }),
            el("th", { scope: "col", class: "act" }, [el("span", { class: "sr-only", text: t("replay_col") })]),
          ]),
        ]),
        el("tbody", {}, rows),
      ])
    );
  }

  function when(f) {
    return showDay(f.start) + " " + f.start.slice(11, 16);
  }

  /* --- a flight's replay on the field's map ---------------------------------------------- */

  /* The whole flight plays in about this long, never slower than real time. */
  var REPLAY_MS = 30000;
  var CLOCK = new Intl.DateTimeFormat("en-GB", {
    timeZone: TZ,
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  });

  /* The positions of a flight's track (GET /flights/{id}/track) in time order: time, place,
   * spray state of the line on to the next one, and whether a line joins it to the next. */
  function timeline(track) {
    var out = [];
    track.features.forEach(function (f) {
      var g = f.geometry;
      var coords = g.type === "LineString" ? g.coordinates : [g.coordinates];
      var times = f.properties.t_ms;
      coords.forEach(function (c, i) {
        out.push({ t: times[i], ll: [c[1], c[0]], on: f.properties.spraying, joined: i < coords.length - 1 });
      });
    });
    return out.sort(function (a, b) { return a.t - b.t; }); /* stable: a line's start after the previous end */
  }

  /* The last position at or before ``ms`` (binary search). */
  function at(line, ms) {
    var lo = 0, hi = line.length - 1;
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (line[mid].t <= ms) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /* A function that replays one flight (a row of the flights table) on ``map``. */
  function replayer(drawn, mapBox) {
    var L = window.L;
    var map = drawn.map;
    var box = document.getElementById("replay");
    var play = document.getElementById("replay-play");
    var slider = document.getElementById("replay-time");
    var clock = document.getElementById("replay-clock");
    var spray = document.getElementById("replay-spray");
    var note = document.getElementById("replay-note");
    var state = { line: [], start: 0, t: 0, playing: false, layer: null, marker: null, last: 0 };

    function show(ms) {
      var line = state.line;
      if (!line.length) return;
      state.t = Math.max(0, Math.min(ms, line[line.length - 1].t));
      var k = at(line, state.t);
      var p = line[k], ll = p.ll, on = p.joined && p.on;
      if (p.joined && k + 1 < line.length && line[k + 1].t > p.t) {
        var q = line[k + 1], f = (state.t - p.t) / (q.t - p.t);
        ll = [p.ll[0] + f * (q.ll[0] - p.ll[0]), p.ll[1] + f * (q.ll[1] - p.ll[1])];
      }
      state.marker.setLatLng(ll);
      state.marker.setStyle({ fillColor: on ? "#0d47a1" : "#ffffff" });
      var text = CLOCK.format(new Date(state.start + state.t));
      clock.textContent = text;
      spray.textContent = t(on ? "replay_spraying" : "replay_not_spraying");
      spray.className = "replay-spray " + (on ? "is-on" : "is-off");
      slider.value = String(Math.round(state.t));
      slider.setAttribute("aria-valuetext", text + ", " + spray.textContent);
    }

    function setPlaying(on) {
      state.playing = on;
      play.textContent = (on ? "❚❚ " : "▶ ") + t(on ? "replay_pause" : "replay_play");
      play.setAttribute("aria-pressed", on ? "true" : "false");
      if (on) {
        state.last = 0;
        window.requestAnimationFrame(step);
      }
    }

    function step(now) {
      if (!state.playing) return;
      var end = state.line[state.line.length - 1].t;
      if (state.last) show(state.t + (now - state.last) * Math.max(1, end / REPLAY_MS));
      state.last = now;
      if (state.t >= end) setPlaying(false);
      else window.requestAnimationFrame(step);
    }

    play.addEventListener("click", function () {
      if (!state.line.length) return;
      if (!state.playing && state.t >= state.line[state.line.length - 1].t) show(0);
      setPlaying(!state.playing);
    });
    slider.addEventListener("input", function () {
      setPlaying(false);
      show(Number(slider.value));
    });

    return function (flight) {
      setPlaying(false);
      if (state.layer) map.removeLayer(state.layer);
      if (state.marker) map.removeLayer(state.marker);
      state.line = [];
      box.hidden = false;
      box.removeAttribute("data-points");
      document.getElementById("replay-title").textContent = t("replay_title", { time: when(flight), drone: flight.drone });
      mapBox.scrollIntoView({ block: "start" });
      var path = "/api/v1/flights/" + encodeURIComponent(flight.id) + "/track?max_points=2000";
      return api(path)
        .then(function (track) {
          var points = 0;
          state.layer = L.geoJSON(track, {
            style: function (f) {
              return f.properties.spraying
                ? { className: "replay-on", color: "#0d47a1", weight: 3, smoothFactor: 0 }
                : { className: "replay-off", color: "#212121", weight: 2, dashArray: "5 4", smoothFactor: 0 };
            },
            pointToLayer: function (f, latlng) {
              return L.circleMarker(latlng, { radius: 3, className: "replay-point", color: "#212121" });
            },
            onEachFeature: function (f, layer) {
              points += layer.getLatLngs ? layer.getLatLngs().length : 1;
            },
            interactive: false,
          }).addTo(map);
          state.line = timeline(track);
          state.start = track.start_ms;
          note.hidden = !track.clipped;
          if (track.clipped) note.textContent = t("replay_clipped", { m: num(track.clipped.margin_m, 0) });
          box.setAttribute("data-points", String(points));
          if (!state.line.length) {
            note.hidden = false;
            note.textContent = t("replay_empty");
            play.disabled = slider.disabled = true;
            return;
          }
          play.disabled = slider.disabled = false;
          map.fitBounds(state.layer.getBounds().extend(drawn.bounds), { padding: [8, 8] });
          state.marker = L.circleMarker(state.line[0].ll, {
            radius: 7,
            className: "replay-marker",
            color: "#000000",
            weight: 2,
            fillOpacity: 1,
            interactive: false,
          }).addTo(map);
          slider.max = String(Math.ceil(state.line[state.line.length - 1].t / 1000) * 1000);
          show(0);
          play.focus({ preventScroll: true });
          setPlaying(true);
        })
        .catch(function (e) {
          if (e.message === "401") return;
          note.hidden = false;
          note.textContent = t("error_load", { status: e.status || "?" });
        });
    };
  }

  /* --- a cooperative's month ---------------------------------------------------------- */

  function bars(box, rows, label, value, unit) {
    if (!rows.length) {
      box.appendChild(el("p", { text: t("no_report") }));
      return;
    }
    var top = Math.max.apply(null, rows.map(value)) || 1;
    rows.forEach(function (r) {
      var v = value(r);
      box.appendChild(
        el("div", { class: "bar-row", "data-key": r.key }, [
          el("span", { class: "bar-label", text: label(r) }),
          el("span", { class: "bar-track", "aria-hidden": "true" }, [
            el("span", { class: "bar", style: "width:" + Math.max(2, (100 * v) / top).toFixed(1) + "%" }),
          ]),
          el("span", { class: "bar-value", text: num(v, 2) + " " + unit }),
        ])
      );
    });
  }

  function money(vnd) {
    return new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 }).format(vnd) + " " + t("vnd");
  }

  /* The tracks of the cooperative's drones on one day, spray on and off (the last day of
   * the month with flights). */
  function fleetMap(coop, day, droneRows) {
    var L = window.L;
    var section = document.getElementById("fleet-box");
    document.getElementById("fleet-title").textContent = t("fleet_map", { day: showDay(day) });
    section.hidden = false;
    var tiles = document.body.getAttribute("data-tiles");
    var map = L.map("fleet-map", { attributionControl: !!tiles, zoomSnap: 0.25 });
    if (tiles) L.tileLayer(tiles, { maxZoom: 21 }).addTo(map);
    /* The cooperative's fields lie under the tracks, whichever arrives first. */
    map.createPane("fields").style.zIndex = 350;
    var bounds = L.latLngBounds([]);
    var fieldBounds = L.latLngBounds([]);
    var outlines = api("/api/v1/fields?" + q({ format: "geojson", limit: FLEET_FIELDS })).then(function (all) {
      var mine = (all.features || []).filter(function (f) {
        return f.properties.kind !== "no_spray" && f.properties.coop === coop;
      });
      if (!mine.length) return;
      var layer = L.geoJSON({ type: "FeatureCollection", features: mine }, {
        pane: "fields",
        style: function () {
          return { className: "fleet-field", color: "#1b3a1b", weight: 1.5, fillColor: "#c5e1a5", fillOpacity: 0.35 };
        },
        interactive: false,
      }).addTo(map);
      fieldBounds.extend(layer.getBounds());
    });
    var tracks = Promise.all(
      droneRows.map(function (r) {
        var path =
          "/api/v1/drones/" + encodeURIComponent(coop) + "/" + encodeURIComponent(r.key) +
          "/track?" + q({ from: day, to: addDays(day, 1), max_points: 2000 });
        return api(path).then(function (track) {
          var layer = L.geoJSON(track, {
            style: function (f) {
              return f.properties.spraying
                ? { className: "track-on", color: "#2e7d32", weight: 3 }
                : { className: "track-off", color: "#616161", weight: 1.5, dashArray: "4 4" };
            },
            pointToLayer: function (f, latlng) {
              return L.circleMarker(latlng, { radius: 2, className: "track-point" });
            },
            interactive: false,
          }).addTo(map);
          if (layer.getLayers().length) bounds.extend(layer.getBounds());
        });
      })
    );
    return Promise.all([outlines.catch(function () { return null; }), tracks]).then(function () {
      if (bounds.isValid()) map.fitBounds(bounds, { padding: [12, 12] });
      else if (fieldBounds.isValid()) map.fitBounds(fieldBounds, { padding: [12, 12] });
      else map.setView([21.08, 106.52], 13);
    });
  }

  /* The usage report's flags per row: how many, and their kinds. */
  function flagCounts(box, rows, kind) {
    if (!rows.length) {
      box.appendChild(el("p", { text: t("no_report") }));
      return;
    }
    box.appendChild(
      el("table", { class: "flights flag-counts" }, [
        el("thead", {}, [
          el("tr", {}, [
            el("th", { scope: "col", text: t(kind) }),
            el("th", { scope: "col", class: "num", text: t("flag_count") }),
            el("th", { scope: "col", text: t("flag_kinds") }),
          ]),
        ]),
        el(
          "tbody",
          {},
          rows.map(function (r) {
            var counts = r.flag_counts || {};
            var n = Object.keys(counts).reduce(function (sum, c) {
              return sum + counts[c];
            }, 0);
            var names = (r.flag_codes || []).map(flagName).filter(function (x, i, all) {
              return all.indexOf(x) === i;
            });
            return el("tr", { "data-key": r.key, class: n ? "flagged" : "" }, [
              el("td", { text: r.label || r.key || "—" }),
              el("td", { class: "num flag-count", text: n ? "⚠ " + n : "0" }),
              el("td", { class: "flag-kinds", text: names.join(", ") || "—" }),
            ]);
          })
        ),
      ])
    );
  }

  function coopPage() {
    var params = new URLSearchParams(window.location.search);
    var month = params.get("month");
    if (!/^\d{4}-\d{2}$/.test(month || "")) month = today().slice(0, 7);
    var from = month + "-01";
    var to = addDays(from, 32).slice(0, 7) + "-01";
    var input = document.getElementById("month");
    input.value = month.slice(5, 7) + "/" + month.slice(0, 4);
    document.getElementById("month-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var m = /^\s*(\d{1,2})\/(\d{4})\s*$/.exec(input.value);
      if (!m || +m[1] < 1 || +m[1] > 12) return;
      window.location.search = "month=" + m[2] + "-" + ("0" + m[1]).slice(-2);
    });
    var window_ = { from: from, to: to };
    document.getElementById("csv").setAttribute(
      "href",
      "/api/v1/reports/usage?" + q({ from: from, to: to, format: "csv", lang: LANG })
    );
    document.getElementById("invoices").setAttribute(
      "href",
      "/api/v1/reports/usage?" + q({ from: from, to: to, format: "pdf", lang: LANG })
    );
    function report(groupBy) {
      return api("/api/v1/reports/usage?" + q(Object.assign({ group_by: groupBy }, window_)));
    }
    Promise.all([report("member"), report("drone"), report("day")])
      .then(function (answers) {
        var members = answers[0];
        var k = members.totals;
        setStatus(members.coop_name || members.coop);
        var totals = document.getElementById("totals");
        [
          ["sprayed", areaText(k.sprayed_ha, k.sprayed_sao), "sprayed"],
          ["litres", num(k.litres, 1), "litres"],
          ["flights_n", String(k.flights), "flights"],
          ["bill", money(k.amount_vnd), "amount"],
        ].forEach(function (r) {
          totals.appendChild(
            el("div", { "data-total": r[2] }, [el("dt", { text: t(r[0]) }), el("dd", { text: r[1] })])
          );
        });
        bars(
          document.getElementById("per-drone"),
          answers[1].rows,
          function (r) { return r.label || r.key; },
          function (r) { return r.sprayed_ha; },
          t("ha")
        );
        bars(
          document.getElementById("per-day"),
          answers[2].rows,
          function (r) { return showDay(r.key); },
          function (r) { return r.sprayed_ha; },
          t("ha")
        );
        var days = answers[2].rows;
        if (days.length) fleetMap(members.coop, days[days.length - 1].key, answers[1].rows);
        flagCounts(document.getElementById("flags-members"), members.rows, "member");
        flagCounts(document.getElementById("flags-drones"), answers[1].rows, "drone");
        var box = document.getElementById("members");
        if (!members.rows.length) {
          box.appendChild(el("p", { text: t("no_report") }));
        } else {
          box.appendChild(
            el("table", { class: "flights members" }, [
              el("thead", {}, [
                el("tr", {}, [
                  el("th", { scope: "col", text: t("member") }),
                  el("th", { scope: "col", class: "num", text: t("sprayed") }),
                  el("th", { scope: "col", class: "num", text: t("bill") }),
                ]),
              ]),
              el(
                "tbody",
                {},
                members.rows.map(function (r) {
                  return el("tr", { "data-member": r.key }, [
                    el("td", { text: r.label || r.key }),
                    el("td", { class: "num", text: num(r.sprayed_ha, 2) + " " + t("ha") }),
                    el("td", { class: "num", text: money(r.amount_vnd) }),
                  ]);
                })
              ),
            ])
          );
        }
      })
      .catch(function (e) {
        if (e.message !== "401") setStatus(t("error_load", { status: e.status || "?" }), true);
      });
    api("/api/v1/drones?limit=100")
      .then(function (list) {
        var ul = document.getElementById("drones");
        if (!list.length) ul.appendChild(el("li", { text: t("no_drones") }));
        return Promise.all(
          list.map(function (d) {
            var path = "/api/v1/drones/" + encodeURIComponent(d.coop) + "/" + encodeURIComponent(d.drone);
            return api(path).then(function (one) {
              var status = one.status || "unknown";
              ul.appendChild(
                el("li", { "data-drone": d.drone, class: "drone-" + status }, [
                  el("span", { class: "dot", "aria-hidden": "true" }),
                  el("span", { text: d.drone }),
                  el("span", { class: "bar-value", text: t("status_" + status) }),
                ])
              );
            });
          })
        );
      })
      .catch(function () {
        return null;
      });
  }

  /* --- a cooperative imports fields ----------------------------------------------------- */

  /* The API's body limit (api.limits.MAX_BODY_BYTES): say so before sending. */
  var MAX_UPLOAD_BYTES = 8 * 1024 * 1024;

  /* Parameters a page shows counting from 1 (the API counts features and vertices from 0). */
  var FROM_ONE = { vertex: true, first: true };

  /* One problem of an import in the page's language ("Thửa thứ 2 (bad id!): mã … không hợp
   * lệ …"), from its code and parameters; the API's English text for a code this page does
   * not know. */
  function problemText(p) {
    var params = p.params || {};
    var key = "problem_" + p.code;
    if (!M[key]) return p.text;
    var label =
      p.index === null || p.index === undefined
        ? t("problem_document")
        : p.id
        ? t("problem_feature_id", { n: p.index + 1, id: p.id })
        : t("problem_feature", { n: p.index + 1 });
    var place = [];
    if (typeof params.polygon === "number") place.push(t("problem_polygon", { n: params.polygon + 1 }));
    if (typeof params.ring === "number") {
      place.push(params.ring === 0 ? t("problem_outer_ring") : t("problem_hole", { n: params.ring }));
    }
    var shown = {};
    Object.keys(params).forEach(function (k) {
      var v = params[k];
      if (typeof v === "number") {
        v = FROM_ONE[k] ? v + 1 : v;
        shown[k] = k === "pct" && v < 1 ? "< 1" : new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 4 }).format(v);
      } else shown[k] = v;
    });
    return label + (place.length ? ", " + place.join(", ") : "") + ": " + t(key, shown);
  }

  /* How many places (features, or the whole file) the problems are in. */
  function placesOf(problems) {
    var seen = {};
    problems.forEach(function (p) {
      seen[p.index === null || p.index === undefined ? "file" : p.index] = true;
    });
    return Object.keys(seen).length;
  }

  function importPage() {
    var form = document.getElementById("import-form");
    var input = document.getElementById("file");
    var validOnly = document.getElementById("valid-only");
    var problems = document.getElementById("problems");

    function listProblems(coded, texts) {
      if (coded) {
        coded.forEach(function (p) {
          problems.appendChild(el("li", { class: "problem", "data-code": p.code, text: problemText(p) }));
        });
        return;
      }
      texts.forEach(function (p) {
        problems.appendChild(el("li", { class: "problem", text: p }));
      });
    }

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      problems.textContent = "";
      var file = input.files && input.files[0];
      if (!file) return;
      if (file.size > MAX_UPLOAD_BYTES) {
        setStatus(t("import_too_big", { mb: num(file.size / 1048576, 1) }), true);
        return;
      }
      setStatus(t("loading"));
      file
        .text()
        .then(function (text) {
          try {
            JSON.parse(text);
          } catch (e) {
            setStatus(t("import_not_json"), true);
            return null;
          }
          var path = "/api/v1/fields" + (validOnly.checked ? "?valid_only=true" : "");
          return fetch(path, {
            method: "POST",
            credentials: "same-origin",
            headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrfToken() },
            body: text,
          }).then(function (r) {
            if (r.status === 401) {
              window.location.assign("/login");
              return null;
            }
            return r.json().then(function (body) {
              if (r.ok) {
                var refused = body.refused || [];
                setStatus(
                  refused.length
                    ? t("import_done_partial", { n: body.imported, m: placesOf(refused) })
                    : t("import_done", { n: body.imported })
                );
                body.fields.forEach(function (f) {
                  problems.appendChild(
                    el("li", { class: "imported" }, [el("a", { href: "/fields/" + encodeURIComponent(f.id), text: f.id + " · " + (f.name || "") })])
                  );
                });
                listProblems(refused, []);
                return null;
              }
              var detail = body.detail;
              var coded = body.coded_problems;
              if (coded && coded.length) {
                var all = validOnly.checked && r.status === 422 && coded.every(function (p) { return p.index !== null; });
                setStatus(all ? t("import_nothing_valid") : t("import_problems", { n: placesOf(coded) }), true);
              } else {
                var message = typeof detail === "string" ? detail : (detail && detail.message) || String(r.status);
                setStatus(t("import_refused", { message: message }), true);
              }
              listProblems(coded, (detail && detail.problems) || body.problems || []);
              return null;
            });
          });
        })
        .catch(function () {
          setStatus(t("error_load", { status: "?" }), true);
        });
    });
  }

  /* --- an operator's day ----------------------------------------------------------------- */

  function table(box, heads, rows) {
    box.appendChild(
      el("table", { class: "flights" }, [
        el("thead", {}, [
          el(
            "tr",
            {},
            heads.map(function (h) {
              return el("th", { scope: "col", text: t(h) });
            })
          ),
        ]),
        el("tbody", {}, rows),
      ])
    );
  }

  function reasonBars(box, counts) {
    var rows = Object.keys(counts || {})
      .sort()
      .map(function (k) {
        return { key: k, n: counts[k] };
      });
    if (!rows.length) {
      box.appendChild(el("p", { text: t("no_rejected") }));
      return;
    }
    var top = Math.max.apply(null, rows.map(function (r) { return r.n; })) || 1;
    rows.forEach(function (r) {
      box.appendChild(
        el("div", { class: "bar-row", "data-key": r.key }, [
          el("span", { class: "bar-label", text: r.key }),
          el("span", { class: "bar-track", "aria-hidden": "true" }, [
            el("span", { class: "bar", style: "width:" + Math.max(2, (100 * r.n) / top).toFixed(1) + "%" }),
          ]),
          el("span", { class: "bar-value", text: new Intl.NumberFormat(LOCALE).format(r.n) }),
        ])
      );
    });
  }

  function opsPage() {
    var params = new URLSearchParams(window.location.search);
    var day = params.get("day");
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day || "")) day = today();
    var input = document.getElementById("day");
    input.value = showDay(day);
    document.getElementById("day-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var chosen = parseDay(input.value);
      if (chosen) window.location.search = "day=" + chosen;
    });
    api("/api/v1/rejected?" + q({ from: day, to: addDays(day, 1), limit: 1000 }))
      .then(function (body) {
        reasonBars(document.getElementById("rejected-day"), body.returned_by_reason);
        reasonBars(document.getElementById("rejected-all"), body.all_time_by_reason);
        var latest = body.messages.slice(-20).reverse();
        var box = document.getElementById("rejected-latest");
        if (!latest.length) {
          box.appendChild(el("p", { text: t("no_rejected") }));
          return;
        }
        table(
          box,
          ["received", "topic", "reason", "samples"],
          latest.map(function (r) {
            return el("tr", {}, [
              el("td", { text: r.received.slice(11, 16) }),
              el("td", { class: "topic", text: r.topic }),
              el("td", { text: r.reason }),
              el("td", { class: "num", text: String(r.count) }),
            ]);
          })
        );
      })
      .catch(function (e) {
        if (e.message !== "401") setStatus(t("error_load", { status: e.status || "?" }), true);
      });
    api("/api/v1/drones?limit=1000")
      .then(function (list) {
        var box = document.getElementById("drones-last");
        if (!list.length) {
          box.appendChild(el("p", { text: t("no_drones") }));
          return;
        }
        table(
          box,
          ["coop", "drone", "last_seen", "battery"],
          list.map(function (d) {
            return el("tr", { "data-drone": d.coop + "/" + d.drone }, [
              el("td", { text: d.coop }),
              el("td", { text: d.drone }),
              el("td", { text: d.last_seen ? showDay(d.last_seen) + " " + d.last_seen.slice(11, 16) : "—" }),
              el("td", { class: "num", text: d.battery_pct == null ? "—" : num(d.battery_pct, 0) + " %" }),
            ]);
          })
        );
      })
      .catch(function (e) {
        if (e.message !== "401") setStatus(t("error_load", { status: e.status || "?" }), true);
      });
  }

  /* --- keys and login links (operators: every key; cooperatives: their members') ------- */

  function csrfToken() {
    return document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  }

  /* A write by the session cookie (with its CSRF token): the answer's status and JSON. */
  function send(method, path, body) {
    return fetch(path, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrfToken() },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (r) {
      if (r.status === 401) {
        window.location.assign("/login");
        throw new Error("401");
      }
      return r.json().then(function (doc) {
        return { status: r.status, ok: r.ok, body: doc };
      });
    });
  }

  function refusal(answer) {
    var d = answer.body && answer.body.detail;
    var message = typeof d === "string" ? d : (d && d.message) || String(answer.status);
    return t("key_refused", { message: message });
  }

  function keysPage() {
    var role = document.body.getAttribute("data-role");
    var list = document.getElementById("keys");
    var box = document.getElementById("link-box");
    var urlInput = document.getElementById("login-url");

    function roleName(r) {
      return t("role_" + r);
    }

    function showLink(title, link, key, keyId) {
      box.setAttribute("data-key", keyId);
      document.getElementById("link-title").textContent = title;
      document.getElementById("new-key").hidden = !key;
      document.getElementById("key-value").value = key || "";
      urlInput.value = link.url;
      document.getElementById("login-note").textContent = t("login_link_note", { date: showDay(link.expires) });
      document.getElementById("login-qr").setAttribute("src", link.qr_svg);
      document.getElementById("login-qr-png").setAttribute("href", link.qr_png);
      box.hidden = false;
      box.scrollIntoView({ block: "nearest" });
    }

    function card(k) {
      var who = k.name || k.subject;
      var status = k.revoked ? t("key_revoked", { date: showDay(k.revoked) }) : t("key_active");
      var details = roleName(k.role) + " · " + k.subject + (k.coop && role === "operator" ? " · " + k.coop : "");
      var item = el("li", { class: "key-card" + (k.revoked ? " revoked" : ""), "data-key": k.key_id }, [
        el("h3", { text: who }),
        el("p", { class: "key-who", text: details }),
        el("p", { class: "key-when" }, [
          el("span", { text: t("key_created", { date: showDay(k.created) }) }),
          document.createTextNode(" · "),
          el("span", { class: "key-status", text: status }),
          el("span", { class: "key-id", text: " · " + k.key_id }),
        ]),
      ]);
      if (!k.revoked) {
        var linkButton = el("button", { type: "button", class: "secondary new-link", text: t("new_link") });
        var revokeButton = el("button", { type: "button", class: "danger revoke", text: t("revoke") });
        linkButton.addEventListener("click", function () {
          send("POST", "/api/v1/keys/" + encodeURIComponent(k.key_id) + "/login-link", {})
            .then(function (a) {
              if (!a.ok) return setStatus(refusal(a), true);
              setStatus("");
              showLink(t("login_link_title", { name: who }), a.body, null, k.key_id);
            })
            .catch(function (e) {
              if (e.message !== "401") setStatus(t("error_load", { status: "?" }), true);
            });
        });
        revokeButton.addEventListener("click", function () {
          if (!window.confirm(t("revoke_confirm", { name: who }))) return;
          send("DELETE", "/api/v1/keys/" + encodeURIComponent(k.key_id))
            .then(function (a) {
              if (!a.ok) return setStatus(refusal(a), true);
              setStatus(t("key_revoked_done", { name: who, n: a.body.sessions_ended }));
              if (box.getAttribute("data-key") === k.key_id) box.hidden = true;
              item.replaceWith(card(a.body));
            })
            .catch(function (e) {
              if (e.message !== "401") setStatus(t("error_load", { status: "?" }), true);
            });
        });
        item.appendChild(el("p", { class: "key-actions" }, [linkButton, revokeButton]));
      }
      return item;
    }

    function load() {
      return api("/api/v1/keys").then(function (keys) {
        list.textContent = "";
        if (!keys.length) list.appendChild(el("li", { class: "empty", text: t("no_keys") }));
        keys
          .slice()
          .reverse()
          .forEach(function (k) {
            list.appendChild(card(k));
          });
      });
    }

    load().catch(function (e) {
      if (e.message !== "401") setStatus(t("error_load", { status: e.status || "?" }), true);
    });
    /* The members a cooperative may name: the owners of its fields. */
    if (role === "coop") {
      api("/api/v1/fields?limit=10000")
        .then(function (fields) {
          var owners = {};
          fields.forEach(function (f) {
            if (f.owner) owners[f.owner] = true;
          });
          var datalist = document.getElementById("owners");
          Object.keys(owners)
            .sort()
            .forEach(function (o) {
              datalist.appendChild(el("option", { value: o }));
            });
        })
        .catch(function () {
          return null;
        });
    }

    document.getElementById("copy-link").addEventListener("click", function () {
      urlInput.select();
      var done = function () {
        setStatus(t("copied"));
      };
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(urlInput.value).then(done, done);
      else {
        document.execCommand("copy");
        done();
      }
    });

    document.getElementById("key-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var body = {
        role: role === "operator" ? document.getElementById("key-role").value : "farmer",
        subject: document.getElementById("key-subject").value.trim(),
        name: document.getElementById("key-name").value.trim(),
        login_link: true,
      };
      var coopInput = document.getElementById("key-coop");
      if (coopInput && coopInput.value.trim() && body.role === "farmer") body.coop = coopInput.value.trim();
      send("POST", "/api/v1/keys", body)
        .then(function (a) {
          if (!a.ok) return setStatus(refusal(a), true);
          setStatus("");
          ev.target.reset();
          var empty = list.querySelector(".empty");
          if (empty) empty.remove();
          list.prepend(card(a.body));
          var who = a.body.name || a.body.subject;
          showLink(t("new_key_title", { name: who }), a.body.login, a.body.key, a.body.key_id);
        })
        .catch(function (e) {
          if (e.message !== "401") setStatus(t("error_load", { status: "?" }), true);
        });
    });
  }

  var page = document.body.getAttribute("data-page");
  notePageOffline();
  if ("serviceWorker" in navigator && window.isSecureContext) {
    if (page === "login" && window.caches) {
      /* Signed out, or someone else signs in: forget the last answers kept for offline. */
      window.caches.delete("agd-data");
    } else {
      navigator.serviceWorker.register("/sw.js").catch(function () {
        return null; /* offline reading is a bonus; the page works without it */
      });
    }
  }
  if (page === "fields") fieldsPage();
  else if (page === "field") fieldPage();
  else if (page === "coop") coopPage();
  else if (page === "import") importPage();
  else if (page === "ops") opsPage();
  else if (page === "keys") keysPage();
})();
