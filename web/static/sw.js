/* agridrone service worker: keeps the last answers readable without signal.
 * Static files: cache first (they change only with a new release: the cache name carries
 * the release). Pages and API reads: network first, the last good answer when the network
 * fails, marked with X-Agd-Offline (a page: data-agd-offline on its <html>, holding its
 * Date) so the page shows its age.
 * Nothing else is touched: writes, other origins. Signing in again or out clears the data. */
"use strict";

var RELEASE = "__RELEASE__";
var STATIC = "agd-static-" + RELEASE;
var DATA = "agd-data";

self.addEventListener("install", function () {
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches
      .keys()
      .then(function (keys) {
        return Promise.all(
          keys
            .filter(function (k) {
              return k.indexOf("agd-static-") === 0 && k !== STATIC;
            })
            .map(function (k) {
              return caches.delete(k);
            })
        );
      })
      .then(function () {
        return self.clients.claim();
      })
  );
});

function kept(request) {
  return caches.open(DATA).then(function (cache) {
    return cache.match(request).then(function (hit) {
      if (!hit) return Response.error();
      var headers = new Headers(hit.headers);
      headers.set("X-Agd-Offline", "1");
      /* A page says so itself (its answers are in it: web/firstview.py), with its age. */
      var page = (headers.get("Content-Type") || "").indexOf("text/html") === 0;
      var read = page
        ? hit.text().then(function (text) {
            var date = (headers.get("Date") || "").replace(/"/g, "");
            return text.replace("<html ", '<html data-agd-offline="' + date + '" ');
          })
        : hit.blob();
      if (page) {
        headers.delete("Content-Length");
        headers.delete("Content-Encoding");
      }
      return read.then(function (body) {
        return new Response(body, { status: hit.status, statusText: hit.statusText, headers: headers });
      });
    });
  });
}

function networkFirst(request) {
  return fetch(request).then(
    function (response) {
      if (response.ok && !response.redirected) {
        var copy = response.clone();
        caches.open(DATA).then(function (cache) {
          return cache.put(request, copy);
        });
      }
      return response;
    },
    function () {
      return kept(request);
    }
  );
}

function cacheFirst(request) {
  return caches.open(STATIC).then(function (cache) {
    return cache.match(request).then(function (hit) {
      return (
        hit ||
        fetch(request).then(function (response) {
          if (response.ok) cache.put(request, response.clone());
          return response;
        })
      );
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(cacheFirst(request));
  } else if (
    url.pathname.indexOf("/api/v1/") === 0 ||
    url.pathname === "/" ||
    url.pathname.indexOf("/fields/") === 0
  ) {
    event.respondWith(networkFirst(request));
  }
});
