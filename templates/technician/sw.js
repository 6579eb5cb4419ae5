/* The technician view's service worker (served by workorders.technician_views.service_worker at /t/sw.js).
   Pages under /t/ and the fragment of My work: network first, the saved copy when the network fails or is
   slower than NETWORK_TIMEOUT_MS (the network answer still refreshes the copy). Signing in and out, tokens,
   the JSON endpoints and files are never cached. Logging out deletes every cache (technician.js). */
"use strict";
const CONFIG = {{ config|safe }};
const PAGES = "technician-pages-v" + CONFIG.version;
const STATIC = "technician-static-v" + CONFIG.version;
const NETWORK_TIMEOUT_MS = 4000;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(STATIC)
      .then((cache) => Promise.all(CONFIG.static.map((url) => cache.add(url).catch(() => null))))
      .then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) =>
        Promise.all(
          keys
            .filter((key) => key.startsWith("technician-") && key !== PAGES && key !== STATIC)
            .map((key) => caches.delete(key))
        )
      )
      .then(() => self.clients.claim())
  );
});

function excluded(url) {
  return CONFIG.exclude.some((prefix) => url.pathname.startsWith(prefix));
}

function offlinePage() {
  const html =
    '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Offline</title>' +
    '<style>body{font:1rem/1.5 system-ui,sans-serif;margin:0;padding:1rem;color:#1b1f24;background:#f3f4f6}' +
    'a{display:inline-flex;align-items:center;min-height:44px;padding:0 1rem;background:#0b57a4;color:#fff;' +
    'border-radius:.375rem;text-decoration:none;font-weight:700}</style></head><body>' +
    "<h1>You are offline</h1><p>This page was not saved on this phone. The pages you opened before are.</p>" +
    '<p><a href="' + CONFIG.prefix + '">My work</a></p></body></html>';
  return new Response(html, { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
}

function networkFirst(request, cacheName) {
  return caches.open(cacheName).then(
    (cache) =>
      new Promise((resolve, reject) => {
        let settled = false;
        const finish = (response) => {
          if (!settled) {
            settled = true;
            resolve(response);
          }
        };
        const fallback = (error) =>
          cache.match(request).then((cached) => {
            if (cached) return finish(cached);
            if (settled) return;
            if (request.mode === "navigate") return finish(offlinePage());
            settled = true;
            reject(error);
          });
        const timer = setTimeout(() => {
          cache.match(request).then((cached) => cached && finish(cached));
        }, NETWORK_TIMEOUT_MS);
        fetch(request).then(
          (response) => {
            clearTimeout(timer);
            // Only a real answer to this request: not a redirect to the login page, not an error.
            if (response.ok && !response.redirected && response.type === "basic") {
              cache.put(request, response.clone()).catch(() => null);
            }
            finish(response);
          },
          (error) => {
            clearTimeout(timer);
            fallback(error);
          }
        );
      })
  );
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (CONFIG.static.includes(url.pathname)) {
    event.respondWith(networkFirst(request, STATIC));
    return;
  }
  if (!url.pathname.startsWith(CONFIG.prefix) || excluded(url)) return;
  event.respondWith(networkFirst(request, PAGES));
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "clear") {
    event.waitUntil(
      caches.keys().then((keys) => Promise.all(keys.filter((k) => k.startsWith("technician-")).map((k) => caches.delete(k))))
    );
  }
});
