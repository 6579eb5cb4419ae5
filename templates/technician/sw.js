/* The technician view's service worker (served by workorders.technician_views.service_worker at /t/sw.js).
   Pages under /t/ and the fragment of My work: network first, the saved copy when the network fails or is
   slower than NETWORK_TIMEOUT_MS (the network answer still refreshes the copy). Signing in and out, tokens,
   the JSON endpoints and files are never cached. Logging out deletes every cache (technician.js).
   "save" messages (technician.js, "Save my orders for offline") fetch and keep a list of pages at once, so an
   order never opened while online opens offline. "push" events (Web Push, sent by the server's webpush
   channel) show a notification; tapping it opens the order. */
"use strict";{% load i18n %}{% get_current_language as LANGUAGE %}
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
    '<!doctype html><html lang="{{ LANGUAGE|escapejs }}"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{ _("Offline")|escapejs }}</title>' +
    '<style>body{font:1rem/1.5 system-ui,sans-serif;margin:0;padding:1rem;color:#1b1f24;background:#f3f4f6}' +
    'a{display:inline-flex;align-items:center;min-height:44px;padding:0 1rem;background:#0b57a4;color:#fff;' +
    'border-radius:.375rem;text-decoration:none;font-weight:700}</style></head><body>' +
    "<h1>{{ _("You are offline")|escapejs }}</h1><p>{{ _("This page was not saved on this phone. The pages you opened before are.")|escapejs }}</p>" +
    '<p><a href="' + CONFIG.prefix + '">{{ _("My work")|escapejs }}</a></p></body></html>';
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

const SAVE_AT_ONCE = 4;

function saveOne(cache, url) {
  return fetch(url, { credentials: "same-origin", cache: "no-store" }).then(
    (response) => {
      if (!response.ok || response.redirected || response.type !== "basic") return { failed: 1, bytes: 0 };
      return response
        .clone()
        .arrayBuffer()
        .then((buffer) => cache.put(url, response).then(() => ({ failed: 0, bytes: buffer.byteLength })));
    },
    () => ({ failed: 1, bytes: 0 })
  );
}

function savePages(urls) {
  // A few at a time: the phone's connection is shared with the page.
  return caches.open(PAGES).then((cache) => {
    const totals = { saved: 0, failed: 0, bytes: 0 };
    let next = 0;
    const worker = () => {
      if (next >= urls.length) return Promise.resolve();
      const url = urls[next++];
      return saveOne(cache, url).then((result) => {
        totals.failed += result.failed;
        totals.saved += result.failed ? 0 : 1;
        totals.bytes += result.bytes;
        return worker();
      });
    };
    return Promise.all(Array.from({ length: SAVE_AT_ONCE }, worker)).then(() => totals);
  });
}

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (e) {
    data = { title: "{{ _("Maintenance")|escapejs }}", body: event.data ? event.data.text() : "" };
  }
  event.waitUntil(
    self.registration.showNotification(data.title || "{{ _("Maintenance")|escapejs }}", {
      body: data.body || "",
      tag: data.tag || undefined,
      data: { url: data.url || CONFIG.prefix },
      requireInteraction: data.kind === "work-order:assigned" || data.kind === "work-order:urgent",
    })
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = new URL((event.notification.data && event.notification.data.url) || CONFIG.prefix, self.location.origin);
  if (url.origin !== self.location.origin) return;
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const open = windows.find((client) => client.url === url.href);
      if (open) return open.focus();
      return self.clients.openWindow(url.href);
    })
  );
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "save" && Array.isArray(event.data.urls)) {
    const port = event.ports && event.ports[0];
    const urls = event.data.urls.filter((url) => typeof url === "string" && url.startsWith(CONFIG.prefix));
    event.waitUntil(savePages(urls).then((totals) => port && port.postMessage(totals)));
    return;
  }
  if (event.data && event.data.type === "clear") {
    event.waitUntil(
      caches.keys().then((keys) => Promise.all(keys.filter((k) => k.startsWith("technician-")).map((k) => caches.delete(k))))
    );
  }
});
