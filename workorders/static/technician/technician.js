/* The technician view's script: plain JavaScript, no build step, nothing fetched from elsewhere.

   - Service worker (/t/sw.js): the pages opened stay readable offline.
   - Offline queue: the forms marked data-offline (checklist, notes, time, meter readings) post JSON to
     /t/api/…; when the phone is offline (or the server cannot be reached) the entry is kept in localStorage
     with a client id and replayed, in order, when the connection returns, after fetching a fresh CSRF token.
     The server applies a client id once. A refusal on replay (order cancelled or reassigned) goes to the
     "Not applied" list, with the server's message, until dismissed.
   - Live: the event socket /ws/events/ refreshes My work when an order is assigned to me, tells me when the
     order I am looking at was changed by someone else, and shows or hides the maintenance banner.
   - Signing out (/t/logout/) empties the caches and the queue before posting. */
(function () {
  "use strict";

  var body = document.body;
  var USER = body.dataset.user ? Number(body.dataset.user) : null;
  var ORGANIZATION = body.dataset.organization || "";
  var PAGE = body.dataset.page || "";
  var ORDER = body.dataset.order ? Number(body.dataset.order) : null;
  var QUEUE_KEY = "technician.queue.v1";
  var REFUSED_KEY = "technician.refused.v1";
  var OWN_KEY = "technician.own.v1";
  var CACHE_PREFIX = "technician-";

  // --- small helpers --------------------------------------------------------------------------------

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs a secure context
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return x.toString(16).padStart(2, "0"); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function load(key, store) {
    try {
      return JSON.parse((store || localStorage).getItem(key)) || [];
    } catch (e) {
      return [];
    }
  }

  function save(key, value, store) {
    try {
      (store || localStorage).setItem(key, JSON.stringify(value));
    } catch (e) { /* storage full or blocked: nothing more to do */ }
  }

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      var args = arguments;
      clearTimeout(timer);
      timer = setTimeout(function () { fn.apply(null, args); }, ms);
    };
  }

  function cookie(name) {
    var match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  function fromHTML(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  // --- signing out ----------------------------------------------------------------------------------

  function clearThisPhone() {
    try {
      localStorage.removeItem(QUEUE_KEY);
      localStorage.removeItem(REFUSED_KEY);
      sessionStorage.clear();
    } catch (e) { /* ignore */ }
    if (!window.caches) return Promise.resolve();
    return caches.keys().then(function (keys) {
      return Promise.all(keys.filter(function (k) { return k.indexOf(CACHE_PREFIX) === 0; }).map(function (k) {
        return caches.delete(k);
      }));
    }).catch(function () { /* ignore */ });
  }

  function setUpLogout() {
    var form = $("[data-logout-form]");
    if (!form) return;
    var pending = load(QUEUE_KEY);
    var submitAfterClearing = function () {
      form.dataset.cleared = "1";
      clearThisPhone().then(function () { form.submit(); });
    };
    form.addEventListener("submit", function (event) {
      if (form.dataset.cleared) return;
      event.preventDefault();
      submitAfterClearing();
    });
    if (pending.length) {
      $("[data-logout-pending]").hidden = false;
      $("[data-logout-pending-count]").textContent = String(pending.length);
    } else {
      $("[data-logout-status]").textContent = "Signing out…";
      submitAfterClearing();
    }
  }

  if (PAGE === "logout") {
    setUpLogout();
    return;
  }
  if (!USER) return;

  // --- service worker -------------------------------------------------------------------------------

  if ("serviceWorker" in navigator && body.dataset.swUrl) {
    navigator.serviceWorker.register(body.dataset.swUrl, { scope: body.dataset.swScope }).catch(function () {
      /* no offline copies on this browser: the pages still work online */
    });
  }

  var refreshCopy = debounce(function () {
    // Fetching the page again through the service worker updates its offline copy.
    if (navigator.onLine) fetch(location.href, { credentials: "same-origin" }).catch(function () {});
  }, 1500);

  // --- my own changes (so that their events do not say "changed by someone else") --------------------

  function ownChanges() {
    var own = load(OWN_KEY, sessionStorage);
    var embedded = $("#own-changes");
    if (embedded) {
      try { own = own.concat(JSON.parse(embedded.textContent) || []); } catch (e) { /* ignore */ }
    }
    return own;
  }

  function rememberOwn(id) {
    var own = load(OWN_KEY, sessionStorage);
    own.push(id);
    save(OWN_KEY, own.slice(-50), sessionStorage);
  }

  // --- posting and the offline queue ----------------------------------------------------------------

  function fetchToken() {
    return fetch(body.dataset.csrfUrl, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) return { signedOut: true };
        if (!response.ok) throw new Error("token " + response.status);
        return response.json().then(function (data) { return { token: data.csrfToken }; });
      });
  }

  function post(entry, token) {
    rememberOwn(entry.id);
    return fetch(entry.url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": token,
        "X-Correlation-ID": entry.id
      },
      body: JSON.stringify(entry.body)
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        var message = data && data.error ? data.error.message : "";
        if (response.ok && data && data.ok) return { kind: "ok", data: data };
        if (response.status === 401) return { kind: "signed-out", message: message };
        if (data && data.error && [400, 403, 404, 409, 422].indexOf(response.status) >= 0) {
          return { kind: "refused", message: message };
        }
        // 5xx, 503 in maintenance mode, a CSRF page: keep it and try again later
        return { kind: "retry", message: message || "The server answered " + response.status + "." };
      });
    }, function () {
      return { kind: "offline" };
    });
  }

  function queue() { return load(QUEUE_KEY); }
  function myQueue() { return queue().filter(function (entry) { return entry.user === USER; }); }

  function describe(entry) {
    var b = entry.body || {};
    if (entry.kind === "checklist") {
      if (b.done === "0") return "undo";
      if (b.passed === "1") return "pass";
      if (b.passed === "0") return "fail";
      if (b.number_value) return b.number_value;
      if (b.text_value) return "“" + b.text_value.slice(0, 40) + "”";
      return "done";
    }
    if (entry.kind === "note") return "“" + (b.body || "").slice(0, 60) + "”";
    if (entry.kind === "time") return (b.minutes || "?") + " min";
    if (entry.kind === "meter") return "reading " + (b.value || "?");
    return "";
  }

  function renderPanel() {
    var panel = $("#sync-panel");
    if (!panel) return;
    var waiting = myQueue();
    var refused = load(REFUSED_KEY).filter(function (item) { return item.user === USER; });
    var waitingList = $("[data-sync-waiting-list]", panel);
    var refusedList = $("[data-sync-refused-list]", panel);
    waitingList.textContent = "";
    waiting.forEach(function (entry) {
      var li = document.createElement("li");
      li.textContent = entry.label + " — " + describe(entry);
      waitingList.appendChild(li);
    });
    refusedList.textContent = "";
    refused.forEach(function (item) {
      var li = document.createElement("li");
      li.className = "sync__refused";
      var strong = document.createElement("strong");
      strong.textContent = item.label + " — " + item.what;
      li.appendChild(strong);
      li.appendChild(document.createTextNode(item.message));
      refusedList.appendChild(li);
    });
    $("[data-sync-waiting]", panel).hidden = !waiting.length;
    $("[data-sync-refused]", panel).hidden = !refused.length;
    panel.hidden = !waiting.length && !refused.length;
  }

  function formStatus(form, text, kind) {
    var status = form && $("[data-form-status]", form);
    if (!status) return;
    status.textContent = text;
    status.className = "form-status" + (kind ? " is-" + kind : "");
  }

  function markQueued(entry, form) {
    var target = entry.target && document.getElementById(entry.target);
    if (target) {
      target.classList.add("is-queued");
      var state = $("[data-check-state]", target);
      if (state) state.textContent = "Saved on this phone (" + describe(entry) + "): waiting to send.";
      $all("button", target).forEach(function (button) { button.disabled = true; });
    }
    if (entry.kind === "note") {
      var list = $("[data-notes]");
      if (list && !document.querySelector('[data-pending="' + entry.id + '"]')) {
        var li = document.createElement("li");
        li.className = "note is-queued";
        li.dataset.pending = entry.id;
        var meta = document.createElement("p");
        meta.className = "note__meta";
        meta.textContent = "You";
        var text = document.createElement("p");
        text.className = "prewrap note__body";
        text.textContent = entry.body.body || "";
        li.appendChild(meta);
        li.appendChild(text);
        list.appendChild(li);
      }
    }
    if (form) formStatus(form, "Saved on this phone: it is sent when the connection returns.", "queued");
  }

  function enqueue(entry, form) {
    var entries = queue();
    if (!entries.some(function (e) { return e.id === entry.id; })) entries.push(entry);
    save(QUEUE_KEY, entries);
    markQueued(entry, form);
    if (form && entry.kind !== "checklist") form.reset();
    renderPanel();
  }

  function applied(entry, data, form) {
    if (entry.kind === "checklist" && data.html && entry.target) {
      var old = document.getElementById(entry.target);
      if (old) old.replaceWith(fromHTML(data.html));
    }
    if (entry.kind === "note" && data.html) {
      var pending = document.querySelector('[data-pending="' + entry.id + '"]');
      var fresh = fromHTML(data.html);
      if (pending) pending.replaceWith(fresh);
      else if ($("[data-notes]") && !document.getElementById(fresh.id)) $("[data-notes]").appendChild(fresh);
    }
    if (entry.kind === "time" && data.total_minutes !== undefined && $("[data-total-minutes]")) {
      $("[data-total-minutes]").textContent = String(data.total_minutes);
    }
    if (form) {
      if (entry.kind !== "checklist") form.reset();
      formStatus(form, data.message, "");
    }
    refreshCopy();
  }

  function formFields(form, submitter) {
    var fields = {};
    new FormData(form).forEach(function (value, name) {
      if (name !== "csrfmiddlewaretoken" && typeof value === "string") fields[name] = value;
    });
    if (submitter && submitter.name) fields[submitter.name] = submitter.value;
    return fields;
  }

  function needsConnection(form, event) {
    // Starting, completing, parts and photos need the server's answer at once: say so instead of a browser error.
    event.preventDefault();
    var status = $("[data-form-status]", form);
    if (!status) {
      status = document.createElement("p");
      status.setAttribute("role", "status");
      status.dataset.formStatus = "";
      form.appendChild(status);
    }
    formStatus(form, "You are offline: this needs a connection. Try again when you are back online.", "error");
  }

  function onSubmit(event) {
    var form = event.target;
    if (!form.matches) return;
    if (!form.matches("form[data-offline]")) {
      if (!navigator.onLine && form.method.toLowerCase() === "post" && !form.matches("[data-logout-form]")) {
        needsConnection(form, event);
      }
      return;
    }
    event.preventDefault();
    var fields = formFields(form, event.submitter);
    fields.client_id = uuid();
    if (form.dataset.offline === "meter" && !fields.read_at) fields.read_at = new Date().toISOString();
    var entry = {
      id: fields.client_id,
      user: USER,
      url: form.dataset.api,
      body: fields,
      kind: form.dataset.offline,
      label: form.dataset.label || "",
      target: form.dataset.target || null,
      page: location.pathname,
      at: new Date().toISOString()
    };
    if (!navigator.onLine) {
      enqueue(entry, form);
      return;
    }
    var buttons = $all("button", form);
    buttons.forEach(function (button) { button.disabled = true; });
    var token = cookie("csrftoken");
    (token ? Promise.resolve({ token: token }) : fetchToken())
      .then(function (got) {
        if (got.signedOut) return { kind: "signed-out" };
        return post(entry, got.token);
      }, function () { return { kind: "offline" }; })
      .then(function (result) {
        buttons.forEach(function (button) { button.disabled = false; });
        if (result.kind === "ok") {
          applied(entry, result.data, form);
        } else if (result.kind === "refused") {
          formStatus(form, result.message, "error");
        } else {
          enqueue(entry, form);
          if (result.kind === "signed-out") formStatus(form, "Saved on this phone: sign in again to send it.", "queued");
          else if (result.message) formStatus(form, "Saved on this phone: " + result.message, "queued");
        }
      });
  }

  var flushing = null;

  function flush() {
    if (!flushing) {
      flushing = replay().then(function () { flushing = null; }, function () { flushing = null; });
    }
    return flushing;
  }

  function replay() {
    if (!navigator.onLine || !myQueue().length) return Promise.resolve();
    return fetchToken().then(function (got) {
      if (got.signedOut) return;
      var entries = myQueue();
      var step = function (index) {
        if (index >= entries.length) return Promise.resolve();
        var entry = entries[index];
        return post(entry, got.token).then(function (result) {
          if (result.kind === "offline" || result.kind === "retry" || result.kind === "signed-out") return;
          save(QUEUE_KEY, queue().filter(function (e) { return e.id !== entry.id; }));
          if (result.kind === "ok") {
            applied(entry, result.data, null);
          } else {
            var refused = load(REFUSED_KEY);
            refused.push({ id: entry.id, user: USER, label: entry.label, what: describe(entry), message: result.message, at: entry.at });
            save(REFUSED_KEY, refused);
            var target = entry.target && document.getElementById(entry.target);
            if (target) target.classList.remove("is-queued");
            var pending = document.querySelector('[data-pending="' + entry.id + '"]');
            if (pending) pending.remove();
          }
          renderPanel();
          return step(index + 1);
        });
      };
      return step(0);
    }).catch(function () { /* still unreachable: try again later */ }).then(renderPanel);
  }

  document.addEventListener("submit", onSubmit);
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-sync-now]")) flush();
    if (event.target.closest("[data-sync-dismiss]")) {
      save(REFUSED_KEY, load(REFUSED_KEY).filter(function (item) { return item.user !== USER; }));
      renderPanel();
    }
    if (event.target.closest("[data-reload]")) location.reload();
  });

  // --- connection state -----------------------------------------------------------------------------

  function showConnection() {
    var banner = $("#connection-banner");
    if (banner) banner.hidden = navigator.onLine;
  }

  window.addEventListener("online", function () { showConnection(); flush(); });
  window.addEventListener("offline", showConnection);
  setInterval(function () { if (myQueue().length) flush(); }, 20000);

  // --- live events ----------------------------------------------------------------------------------

  // Events after this sequence are news: what came before is in the page (or in its saved copy).
  var lastSequence = /^\d+$/.test(body.dataset.sequence || "") ? Number(body.dataset.sequence) : null;
  var teams = (body.dataset.teams || "").split(",").filter(Boolean).map(Number);
  var socket = null;
  var backoff = 1000;

  var refreshList = debounce(function () {
    var list = $("#work-list");
    if (!list || !body.dataset.fragmentUrl) return;
    fetch(body.dataset.fragmentUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok || response.redirected) throw new Error("list " + response.status);
        return response.text();
      })
      .then(function (html) {
        list.innerHTML = html;
        refreshCopy();
      })
      .catch(function () { /* offline: the list stays as it is */ });
  }, 300);

  function shownOrders() {
    return $all("[data-order-id]").map(function (element) { return Number(element.dataset.orderId); });
  }

  function showMaintenance(payload) {
    var banner = $("#maintenance-banner");
    if (!banner) return;
    banner.hidden = !payload.active;
    var text = $("[data-maintenance-text]", banner);
    if (text && payload.active) {
      var until = payload.expected_end ? " until about " + new Date(payload.expected_end).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
      text.textContent = (payload.reason ? payload.reason + ": " : "") + "changes are refused" + until + "; reading still works.";
    }
  }

  function onEvent(event) {
    var payload = event.payload || {};
    if (event.type === "maintenance:mode-changed") {
      showMaintenance(payload);
      return;
    }
    if (event.type.indexOf("work-order:") !== 0) return;
    if (PAGE === "my-work") {
      if (payload.assignee === USER || teams.indexOf(payload.team) >= 0 || shownOrders().indexOf(payload.id) >= 0) {
        refreshList();
      }
    } else if (PAGE === "order" && payload.id === ORDER) {
      if (ownChanges().indexOf(event.correlation_id) < 0) {
        var banner = $("#changed-banner");
        if (banner) banner.hidden = false;
      }
    }
  }

  function connect() {
    if (!("WebSocket" in window) || !ORGANIZATION) return;
    var params = "organization=" + encodeURIComponent(ORGANIZATION) + (lastSequence !== null ? "&after=" + lastSequence : "");
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    var ws = new WebSocket(scheme + "//" + location.host + "/ws/events/?" + params);
    var pinger = null;
    socket = ws;
    ws.onopen = function () {
      backoff = 1000;
      body.dataset.live = "on";
      pinger = setInterval(function () { if (ws.readyState === 1) ws.send('{"type":"ping"}'); }, 25000);
      flush();
    };
    ws.onmessage = function (message) {
      var data;
      try { data = JSON.parse(message.data); } catch (e) { return; }
      if (data.type !== "event" || !data.event) return;
      if (typeof data.event.sequence === "number") lastSequence = Math.max(lastSequence || 0, data.event.sequence);
      onEvent(data.event);
    };
    ws.onclose = function (close) {
      clearInterval(pinger);
      socket = null;
      body.dataset.live = "off";
      if (close.code === 4401 || close.code === 4403) return; // signed out or not allowed: do not insist
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 30000);
    };
  }

  window.addEventListener("online", function () {
    if (!socket) {
      backoff = 1000;
      connect();
    }
  });

  // --- part search ----------------------------------------------------------------------------------

  function setUpPartSearch() {
    var form = $("form[data-part-search]");
    if (!form) return;
    var input = $("input[name=part_query]", form);
    var hidden = $("input[type=hidden][name=part]", form);
    var results = $("[data-part-results]", form);
    if (!input || !hidden || !results) return;
    var search = debounce(function () {
      var q = input.value.trim();
      if (q.length < 2) {
        results.hidden = true;
        return;
      }
      fetch(form.dataset.partSearch + "?q=" + encodeURIComponent(q), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (data) {
          results.textContent = "";
          (data.results || []).forEach(function (part) {
            var li = document.createElement("li");
            var button = document.createElement("button");
            button.type = "button";
            button.className = "part-result";
            button.dataset.id = part.id;
            button.dataset.label = part.sku + " " + part.name;
            button.textContent = part.sku + " · " + part.name + (part.in_van !== null && data.van ? " (" + part.in_van + " in " + data.van + ")" : "");
            li.appendChild(button);
            results.appendChild(li);
          });
          results.hidden = !(data.results || []).length;
        })
        .catch(function () { results.hidden = true; });
    }, 250);
    input.addEventListener("input", function () {
      hidden.value = "";
      search();
    });
    results.addEventListener("click", function (event) {
      var button = event.target.closest(".part-result");
      if (!button) return;
      hidden.value = button.dataset.id;
      input.value = button.dataset.label;
      results.hidden = true;
    });
  }

  // --- start ----------------------------------------------------------------------------------------

  function start() {
    showConnection();
    myQueue().forEach(function (entry) { if (entry.page === location.pathname) markQueued(entry, null); });
    renderPanel();
    setUpPartSearch();
    var error = $("#error");
    if (error) error.focus();
    connect();
    flush();
  }

  start();
})();
