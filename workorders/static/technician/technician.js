/* The technician view's script: plain JavaScript, no build step, nothing fetched from elsewhere.

   - Service worker (/t/sw.js): the pages opened stay readable offline.
   - Offline queue: the forms marked data-offline (checklist, notes, time, meter readings) post JSON to
     /t/api/…; when the phone is offline (or the server cannot be reached) the entry is kept in localStorage
     with a client id and replayed, in order, when the connection returns, after fetching a fresh CSRF token.
     Offline, the lifecycle steps (start, hold, resume, complete: data-step forms) and parts used are queued
     too, each with the device time it happened (occurred_at); completing checks the required items locally
     from the saved checklist. The server applies a client id once. A refusal on replay (order cancelled,
     reassigned, stock gone) goes to the "Not applied" list with the server's message and beside the thing it
     concerns; the technician retries it, discards it, or keeps it as a note on the order.
   - Saved for offline: My work saves the technician's open orders, their assets and the van's parts through
     the service worker ("Save my orders for offline", and by itself when the list is loaded or changes).
   - Errors where the eye is: a refused submit scrolls to the form or field that caused it and marks it.
   - Scan: the masthead's Scan reads an asset's QR label with the camera (BarcodeDetector) or a typed code.
   - Push: "Notify me on this phone" subscribes this phone to Web Push for urgent work.
   - Live: the event socket /ws/events/ refreshes My work when an order is assigned to me, tells me when the
     order I am looking at was changed by someone else, and shows or hides the maintenance banner.
   - Signing out (/t/logout/) empties the caches, the queue and the queued photos before posting. */
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
  var OFFLINE_KEY = "technician.offline.v1";
  var API_PREFIX = body.dataset.apiPrefix || "/t/api/";
  var ASSET_PREFIX = body.dataset.assetPrefix || "/t/assets/";
  // Texts in the page's language: Django's JavaScript catalogue (/t/jsi18n/, loaded before this script; saved for
  // offline with the pages); without it, English.
  var gettext = window.gettext || function (text) { return text; };
  var ngettext = window.ngettext || function (one, many, count) { return count === 1 ? one : many; };
  var interpolate = window.interpolate || function (format, values) {
    return format.replace(/%\((\w+)\)s/g, function (match, name) { return String(values[name]); });
  };
  var LANG = document.documentElement.lang || undefined; // dates and numbers in the page's language too
  function number(value) {
    var parsed = Number(value);
    return value === null || value === "" || isNaN(parsed) ? String(value) : parsed.toLocaleString(LANG, { maximumFractionDigits: 4 });
  }
  var STATUS_LABELS = { open: gettext("Open"), assigned: gettext("Assigned"), in_progress: gettext("In progress"), on_hold: gettext("On hold"), completed: gettext("Completed") };
  var STEP_LABELS = { start: gettext("start"), resume: gettext("resume"), complete: gettext("complete") };
  var STEP_TARGET = { start: "in_progress", resume: "in_progress", hold: "on_hold", complete: "completed" };
  var STEPS_FROM = { open: ["start"], assigned: ["start"], in_progress: ["hold", "complete"], on_hold: ["resume"] };
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

  function loadObject(key) {
    try {
      return JSON.parse(localStorage.getItem(key)) || null;
    } catch (e) {
      return null;
    }
  }

  // --- errors where the eye is ----------------------------------------------------------------------

  function showErrorAt(target, message) {
    // The message beside what caused it, the place marked, scrolled into view and focused.
    if (!target) return;
    var details = target.closest("details") || (target.matches("details") ? target : null);
    if (details) details.open = true;
    $all(".inline-error", target).forEach(function (old) { old.remove(); });
    var note = document.createElement("p");
    note.className = "inline-error";
    note.setAttribute("role", "alert");
    note.textContent = message;
    var anchor = target.matches("li.check") ? $(".check__text", target) : null;
    if (anchor) anchor.after(note);
    else if (target.matches("details")) $("summary", target).after(note);
    else target.insertBefore(note, target.firstChild);
    $all(".is-error-target").forEach(function (element) { element.classList.remove("is-error-target"); });
    target.classList.add("is-error-target");
    var field = $(".field--invalid input, .field--invalid textarea, .field--invalid select", target) ||
      $("input:not([type=hidden]), textarea, select", target) || $("button", target);
    if (field) field.focus({ preventScroll: true });
    target.scrollIntoView({ block: "center" });
  }

  function markField(form, name, message) {
    var input = form && form.querySelector('[name="' + name + '"]:not([type=hidden])');
    var field = input && input.closest(".field");
    if (!field) return;
    field.classList.add("field--invalid");
    var list = $(".field__errors", field);
    if (!list) {
      list = document.createElement("ul");
      list.className = "field__errors";
      field.insertBefore(list, input);
    }
    list.textContent = "";
    var li = document.createElement("li");
    li.textContent = message;
    list.appendChild(li);
  }

  function fromHTML(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  // --- signing out ----------------------------------------------------------------------------------

  // Photos taken offline wait in IndexedDB (photo-queue.js): counted before signing out, removed with the rest.
  var PHOTO_DB = "technician-photos";

  function queuedPhotoCount() {
    return new Promise(function (resolve) {
      if (!window.indexedDB) { resolve(0); return; }
      var request = indexedDB.open(PHOTO_DB, 1);
      request.onupgradeneeded = function () { request.result.createObjectStore("photos", { keyPath: "id" }); };
      request.onerror = function () { resolve(0); };
      request.onsuccess = function () {
        var db = request.result;
        try {
          var counting = db.transaction("photos").objectStore("photos").count();
          counting.onsuccess = function () { db.close(); resolve(counting.result); };
          counting.onerror = function () { db.close(); resolve(0); };
        } catch (e) { db.close(); resolve(0); }
      };
    });
  }

  function deletePhotoQueue() {
    return new Promise(function (resolve) {
      if (!window.indexedDB) { resolve(); return; }
      var request = indexedDB.deleteDatabase(PHOTO_DB);
      request.onsuccess = request.onerror = request.onblocked = function () { resolve(); };
    });
  }

  function clearThisPhone() {
    try {
      localStorage.removeItem(QUEUE_KEY);
      localStorage.removeItem(REFUSED_KEY);
      sessionStorage.clear();
    } catch (e) { /* ignore */ }
    var pages = !window.caches ? Promise.resolve() : caches.keys().then(function (keys) {
      return Promise.all(keys.filter(function (k) { return k.indexOf(CACHE_PREFIX) === 0; }).map(function (k) {
        return caches.delete(k);
      }));
    }).catch(function () { /* ignore */ });
    return Promise.all([pages, deletePhotoQueue()]);
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
    queuedPhotoCount().then(function (photos) {
      var waiting = pending.length + photos;
      if (waiting) {
        $("[data-logout-pending]").hidden = false;
        $("[data-logout-pending-count]").textContent = String(waiting);
      } else {
        $("[data-logout-status]").textContent = gettext("Signing out…");
        submitAfterClearing();
      }
    });
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
          return { kind: "refused", message: message, code: data.error.code || "", fields: data.error.fields || {} };
        }
        // 5xx, 503 in maintenance mode, a CSRF page: keep it and try again later
        return { kind: "retry", message: message || interpolate(gettext("The server answered %(status)s."), { status: response.status }, true) };
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
      if (b.done === "0") return gettext("undo");
      if (b.passed === "1") return gettext("pass");
      if (b.passed === "0") return gettext("fail");
      if (b.number_value) return number(String(b.number_value).replace(",", "."));
      if (b.text_value) return "“" + b.text_value.slice(0, 40) + "”";
      return gettext("done");
    }
    if (entry.kind === "note") return "“" + (b.body || "").slice(0, 60) + "”";
    if (entry.kind === "time") return interpolate(gettext("%(minutes)s min"), { minutes: b.minutes || "?" }, true);
    if (entry.kind === "meter") return interpolate(gettext("reading %(value)s"), { value: b.value ? number(String(b.value).replace(",", ".")) : "?" }, true);
    if (entry.kind === "step") {
      if (entry.step === "hold") return gettext("put on hold") + (b.reason ? " (“" + b.reason.slice(0, 40) + "”)" : "");
      return STEP_LABELS[entry.step] || entry.step;
    }
    if (entry.kind === "part") return number(String(b.quantity || "1").replace(",", ".")) + " × " + (entry.partLabel || gettext("part"));
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
      li.dataset.refused = item.id;
      var strong = document.createElement("strong");
      strong.textContent = item.label + " — " + item.what;
      li.appendChild(strong);
      li.appendChild(document.createTextNode(item.message));
      if (item.entry) {
        var actions = document.createElement("div");
        actions.className = "sync__actions";
        // Changed by someone else since: the technician has read who changed what and may apply it anyway.
        var retry = item.code === "stale_version" ? gettext("Apply anyway") : gettext("Try again");
        var buttons = [["retry", retry], ["discard", gettext("Discard")]];
        if (item.entry.order) buttons.push(["note", gettext("Keep as a note")]);
        buttons.forEach(function (pair) {
          var button = document.createElement("button");
          button.type = "button";
          button.className = "button button--secondary";
          button.dataset.refusedAction = pair[0];
          button.dataset.refusedId = item.id;
          button.textContent = pair[1];
          actions.appendChild(button);
        });
        li.appendChild(actions);
      }
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

  function showSteps(status) {
    var possible = STEPS_FROM[status] || [];
    $all("form[data-step]").forEach(function (form) {
      var holder = form.closest("[data-form-name]") || form;
      holder.hidden = possible.indexOf(form.dataset.step) < 0;
    });
    var actions = $("[data-actions]");
    if (actions) actions.dataset.statusValue = status;
    var reason = $("[data-hold-reason]");
    if (reason && status !== "on_hold") reason.remove();
  }

  function showStatus(label, waiting) {
    var badge = $("[data-status]");
    if (badge) badge.textContent = label + (waiting ? " · " + gettext("waiting to send") : "");
  }

  function missingRequired() {
    // The required items of the saved checklist not done, counting what is queued on this phone.
    return $all("li.check").filter(function (li) {
      if (!$(".req", li)) return false;
      if (li.dataset.queuedDone) return li.dataset.queuedDone !== "1";
      return !li.classList.contains("is-done");
    }).map(function (li) {
      var text = $(".check__text", li);
      return text && text.firstChild ? text.firstChild.textContent.trim() : "?";
    });
  }

  function markQueued(entry, form) {
    if (entry.kind === "step" && entry.page === location.pathname) {
      var status = STEP_TARGET[entry.step];
      showStatus(STATUS_LABELS[status], true);
      showSteps(status);
      var stepsStatus = $("[data-steps-status]");
      if (stepsStatus) formStatus(stepsStatus.parentNode, interpolate(gettext("Saved on this phone (%(what)s): sent when the connection returns."), { what: describe(entry) }, true), "queued");
    }
    if (entry.kind === "part" && entry.page === location.pathname) {
      var used = $("[data-parts-used]");
      if (used && !used.querySelector('[data-pending="' + entry.id + '"]')) {
        var line = document.createElement("li");
        line.className = "is-queued-line";
        line.dataset.pending = entry.id;
        line.textContent = describe(entry) + " · " + (entry.locationLabel || "") + " · " + gettext("waiting to send");
        used.appendChild(line);
        used.hidden = false;
        var none = $("[data-parts-none]");
        if (none) none.hidden = true;
      }
    }
    var target = entry.target && document.getElementById(entry.target);
    if (target) {
      if (entry.kind === "checklist") target.dataset.queuedDone = entry.body.done === "0" ? "0" : "1";
      target.classList.add("is-queued");
      var state = $("[data-check-state]", target);
      if (state) state.textContent = interpolate(gettext("Saved on this phone (%(what)s): waiting to send."), { what: describe(entry) }, true);
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
        meta.textContent = gettext("You");
        var text = document.createElement("p");
        text.className = "prewrap note__body";
        text.textContent = entry.body.body || "";
        li.appendChild(meta);
        li.appendChild(text);
        list.appendChild(li);
      }
    }
    if (form) formStatus(form, gettext("Saved on this phone: it is sent when the connection returns."), "queued");
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
    if (entry.kind === "step" && entry.page === location.pathname && data.order_status) {
      showStatus(data.status_label, false);
      showSteps(data.order_status);
    }
    if (entry.kind === "part") {
      var pendingPart = document.querySelector('[data-pending="' + entry.id + '"]');
      if (pendingPart) {
        pendingPart.className = "";
        pendingPart.textContent = data.line || data.message;
        delete pendingPart.dataset.pending;
      }
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
    formStatus(form, gettext("You are offline: this needs a connection. Try again when you are back online."), "error");
  }

  function newEntry(form, fields, kind) {
    fields.client_id = uuid();
    fields.occurred_at = new Date().toISOString(); // when it happened on this phone
    if (body.dataset.version) fields.version = body.dataset.version; // the order as this phone had it
    return {
      id: fields.client_id,
      user: USER,
      url: form.dataset.api,
      body: fields,
      kind: kind,
      label: form.dataset.label || "",
      target: form.dataset.target || null,
      page: location.pathname,
      order: ORDER,
      at: fields.occurred_at
    };
  }

  function queueStep(form, submitter) {
    var step = form.dataset.step;
    var fields = formFields(form, submitter);
    if (step === "complete") {
      var missing = missingRequired();
      if (missing.length) {
        showErrorAt(form, interpolate(ngettext(
          "Cannot complete: %(count)s required checklist item(s) are not done: %(items)s.",
          "Cannot complete: %(count)s required checklist item(s) are not done: %(items)s.", missing.length),
          { count: missing.length, items: missing.map(function (text) { return "“" + text + "”"; }).join("; ") }, true));
        return;
      }
    }
    if (step === "hold" && !(fields.reason || "").trim()) {
      markField(form, "reason", gettext("Required."));
      showErrorAt(form, gettext("Say why you are putting it on hold."));
      return;
    }
    var entry = newEntry(form, fields, "step");
    entry.step = step;
    $all(".inline-error", form).forEach(function (old) { old.remove(); });
    enqueue(entry, form);
  }

  function vanParts(form) {
    var url = form.dataset.vanUrl;
    var read = function (response) {
      if (!response || !response.ok) throw new Error("van");
      return response.json();
    };
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(read)
      .catch(function () { return window.caches ? caches.match(url).then(read) : Promise.reject(new Error("van")); })
      .then(function (data) { return data.parts || []; }, function () { return []; });
  }

  function queuePart(form) {
    var fields = formFields(form, null);
    var query = (fields.part_query || "").trim();
    var quantity = (fields.quantity || "").trim();
    if (!/^\d+([.,]\d+)?$/.test(quantity) || Number(quantity.replace(",", ".")) <= 0) {
      markField(form, "quantity", gettext("Enter how many, e.g. 1."));
      showErrorAt(form, gettext("Enter how many you used."));
      return;
    }
    vanParts(form).then(function (parts) {
      var part = null;
      if (fields.part) {
        part = parts.filter(function (p) { return String(p.id) === String(fields.part); })[0] ||
          { id: fields.part, sku: "", name: query };
      } else if (query) {
        var lower = query.toLowerCase();
        var matches = parts.filter(function (p) { return p.sku.toLowerCase() === lower; });
        if (!matches.length) {
          matches = parts.filter(function (p) { return (p.sku + " " + p.name).toLowerCase().indexOf(lower) >= 0; });
        }
        if (matches.length === 1) part = matches[0];
      }
      if (!part) {
        var message = query ? interpolate(gettext("“%(query)s” is not one part of your van saved on this phone: pick it from the list."), { query: query }, true) : gettext("Type a part name or SKU.");
        markField(form, "part_query", message);
        showErrorAt(form, message);
        return;
      }
      fields.part = String(part.id);
      var entry = newEntry(form, fields, "part");
      entry.partLabel = (part.sku ? part.sku + " " : "") + part.name;
      var location_ = form.querySelector("select[name=location]");
      entry.locationLabel = location_ && location_.selectedOptions[0] ? location_.selectedOptions[0].textContent : "";
      $all(".inline-error", form).forEach(function (old) { old.remove(); });
      enqueue(entry, form);
    });
  }

  function onSubmit(event) {
    var form = event.target;
    if (!form.matches) return;
    if (form.matches("[data-scan-form]")) {
      event.preventDefault();
      openScanned($("input[name=code]", form).value, form);
      return;
    }
    if (form.matches("form[data-step][data-api], form[data-part-search][data-api]")) {
      if (navigator.onLine) return; // online: posted as usual, the page shows the server's answer
      event.preventDefault();
      if (form.dataset.step) queueStep(form, event.submitter);
      else queuePart(form);
      return;
    }
    if (!form.matches("form[data-offline]")) {
      if (!navigator.onLine && form.method.toLowerCase() === "post" && !form.matches("[data-logout-form]")) {
        needsConnection(form, event);
      }
      return;
    }
    event.preventDefault();
    var fields = formFields(form, event.submitter);
    if (form.dataset.offline === "meter" && !fields.read_at) fields.read_at = new Date().toISOString();
    var entry = newEntry(form, fields, form.dataset.offline);
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
          Object.keys(result.fields || {}).forEach(function (name) { markField(form, name, result.fields[name][0]); });
          formStatus(form, result.message, "error");
          showErrorAt(form.closest("li.check") || form, result.message);
        } else {
          enqueue(entry, form);
          if (result.kind === "signed-out") formStatus(form, gettext("Saved on this phone: sign in again to send it."), "queued");
          else if (result.message) formStatus(form, interpolate(gettext("Saved on this phone: %(message)s"), { message: result.message }, true), "queued");
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
    var reloadAfter = false;
    var newlyRefused = false;
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
            refused.push({ id: entry.id, user: USER, label: entry.label, what: describe(entry), message: result.message, code: result.code, at: entry.at, entry: entry });
            save(REFUSED_KEY, refused);
            if (entry.page === location.pathname && (entry.kind === "step" || entry.kind === "part")) reloadAfter = true;
            newlyRefused = true;
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
    }).catch(function () { /* still unreachable: try again later */ }).then(function () {
      renderPanel();
      if (reloadAfter && !myQueue().length) {
        location.reload(); // the order as the server has it now; the refusals stay listed, beside what they concern
      } else if (newlyRefused) {
        showRefusalsHere();
      }
    });
  }

  function elementFor(entry) {
    if (entry.target && document.getElementById(entry.target)) return document.getElementById(entry.target);
    var name = entry.kind === "step" ? entry.step : entry.kind;
    var holder = document.querySelector('[data-form-name="' + name + '"]');
    if (holder && !holder.hidden) return holder;
    return $("[data-actions]");
  }

  function showRefusalsHere() {
    // Each refusal of an entry made on this page beside what it concerns; the list at the top says the rest.
    var mine = load(REFUSED_KEY).filter(function (item) { return item.user === USER && item.entry && item.entry.page === location.pathname; });
    mine.forEach(function (item) {
      var element = elementFor(item.entry);
      if (element) showErrorAt(element, interpolate(gettext("Not applied — %(what)s: %(message)s"), { what: item.what, message: item.message }, true));
    });
    if (!mine.length && $("[data-sync-refused]") && !$("[data-sync-refused]").hidden) {
      $("[data-sync-refused]").scrollIntoView({ block: "start" });
    }
  }

  function resolveRefused(id, action) {
    var all = load(REFUSED_KEY);
    var item = all.filter(function (candidate) { return candidate.id === id && candidate.user === USER; })[0];
    if (!item) return;
    save(REFUSED_KEY, all.filter(function (candidate) { return candidate !== item && candidate.id !== id; }));
    if (action === "retry" && item.entry) {
      // "Apply anyway" after a conflict: sent without the version it was made on, so it is not compared again
      // (a closed order, a part no longer in the van or a step that no longer applies is still refused).
      if (item.code === "stale_version" && item.entry.body) delete item.entry.body.version;
      var entries = queue();
      entries.push(item.entry);
      save(QUEUE_KEY, entries);
    } else if (action === "note" && item.entry && item.entry.order) {
      var when = new Date(item.entry.at || item.at).toLocaleString(LANG, { dateStyle: "medium", timeStyle: "short" });
      var id_ = uuid();
      var text = interpolate(gettext("Done offline on %(when)s, not applied: %(what)s. Refused: %(message)s"), { when: when, what: item.what, message: item.message }, true);
      var note = {
        id: id_, user: USER, url: API_PREFIX + "orders/" + item.entry.order + "/notes/",
        body: { body: text, client_id: id_ }, kind: "note", label: item.label.split(":")[0] + ": " + gettext("note"),
        target: null, page: item.entry.page, order: item.entry.order, at: new Date().toISOString()
      };
      var queued = queue();
      queued.push(note);
      save(QUEUE_KEY, queued);
      markQueued(note, null);
    }
    $all(".inline-error").forEach(function (old) { old.remove(); });
    renderPanel();
    flush();
  }

  document.addEventListener("submit", onSubmit);
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-sync-now]")) flush();
    if (event.target.closest("[data-sync-dismiss]")) {
      save(REFUSED_KEY, load(REFUSED_KEY).filter(function (item) { return item.user !== USER; }));
      renderPanel();
    }
    if (event.target.closest("[data-reload]")) location.reload();
    var refusedButton = event.target.closest("[data-refused-action]");
    if (refusedButton) resolveRefused(refusedButton.dataset.refusedId, refusedButton.dataset.refusedAction);
    if (event.target.closest("[data-offline-sync]")) saveForOffline(true);
    if (event.target.closest("[data-push-subscribe]")) subscribePush();
    if (event.target.closest("[data-scan-open]")) openScanner();
    if (event.target.closest("[data-scan-close]")) closeScanner();
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
        saveForOffline(true); // a new assignment: saved for offline at once
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
      var until = payload.expected_end ? new Date(payload.expected_end).toLocaleTimeString(LANG, { hour: "2-digit", minute: "2-digit" }) : "";
      text.textContent = (payload.reason ? payload.reason + ": " : "") + (until
        ? interpolate(gettext("changes are refused until about %(time)s; reading still works."), { time: until }, true)
        : gettext("changes are refused; reading still works."));
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
    var status = $("[data-part-status]", form);
    var asked = 0; // answers to an older query than the last one asked are dropped
    function partButton(part, note) {
      var li = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "part-result";
      button.dataset.id = part.id;
      button.dataset.label = part.sku + " " + part.name;
      button.textContent = part.sku + " · " + part.name + (note ? " (" + note + ")" : "");
      li.appendChild(button);
      return li;
    }
    function say(text) {
      if (!status) return;
      status.textContent = text || "";
      status.hidden = !text;
    }
    function showVanParts(q, why) {
      // the server cannot search (offline, an error, the session ended): the van's parts saved on this phone
      return vanParts(form).then(function (parts) {
        var lower = q.toLowerCase();
        var found = parts.filter(function (p) { return (p.sku + " " + p.name).toLowerCase().indexOf(lower) >= 0; }).slice(0, 10);
        results.textContent = "";
        found.forEach(function (part) {
          results.appendChild(partButton(part, interpolate(gettext("%(count)s in your van"), { count: number(part.in_van) }, true)));
        });
        results.hidden = !found.length;
        say(why + " " + (found.length
          ? gettext("Showing your van's parts saved on this phone.")
          : interpolate(gettext("None of your van's parts saved on this phone matches “%(query)s”."), { query: q }, true)));
      });
    }
    var search = debounce(function () {
      var q = input.value.trim();
      var mine = ++asked;
      if (q.length < 2) {
        results.hidden = true;
        say("");
        return;
      }
      fetch(form.dataset.partSearch + "?q=" + encodeURIComponent(q), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          var json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
          if (response.status === 401 || response.status === 403 || (response.ok && !json)) {
            return { failed: gettext("Your session has ended: sign in again to search every part.") };
          }
          if (!response.ok || !json) {
            return { failed: interpolate(gettext("The search failed (HTTP %(code)s)."), { code: response.status }, true) };
          }
          return response.json();
        }, function () {
          return { failed: gettext("Offline: the server cannot be reached.") };
        })
        .then(function (data) {
          if (mine !== asked) return;
          if (data.failed) return showVanParts(q, data.failed);
          results.textContent = "";
          (data.results || []).forEach(function (part) {
            var note = part.in_van !== null && data.van ? interpolate(gettext("%(count)s in %(van)s"), { count: number(part.in_van), van: data.van }, true) : "";
            results.appendChild(partButton(part, note));
          });
          results.hidden = !(data.results || []).length;
          say(results.hidden ? interpolate(gettext("No part matches “%(query)s”."), { query: q }, true) : "");
        })
        .catch(function () {
          if (mine === asked) showVanParts(q, gettext("The search failed."));
        });
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
      say("");
    });
  }

  // --- saved for offline ----------------------------------------------------------------------------

  var SAVE_AGAIN_AFTER_MS = 5 * 60 * 1000;
  var saving = null;

  function showSaved(saved) {
    var status = $("[data-offline-status]");
    if (!status || !saved || saved.user !== USER) return;
    var at = new Date(saved.saved_at).toLocaleTimeString(LANG, { hour: "2-digit", minute: "2-digit" });
    status.textContent = interpolate(ngettext(
      "%(count)s open order(s), their assets and your van's parts saved on this phone at %(time)s (%(size)s kB)",
      "%(count)s open order(s), their assets and your van's parts saved on this phone at %(time)s (%(size)s kB)", saved.orders),
      { count: number(saved.orders), time: at, size: number(Math.max(1, Math.round(saved.bytes / 1024))) }, true) +
      (saved.failed ? "; " + interpolate(gettext("%(count)s could not be saved."), { count: number(saved.failed) }, true) : ".");
    body.dataset.offlineSaved = String(saved.orders);
  }

  function saveInWorker(urls) {
    return navigator.serviceWorker.ready.then(function (registration) {
      return new Promise(function (resolve, reject) {
        var channel = new MessageChannel();
        var timer = setTimeout(function () { reject(new Error("timeout")); }, 120000);
        channel.port1.onmessage = function (message) {
          clearTimeout(timer);
          resolve(message.data);
        };
        registration.active.postMessage({ type: "save", urls: urls }, [channel.port2]);
      });
    });
  }

  function saveForOffline(now) {
    var section = $("#offline");
    if (!section || !navigator.onLine || !("serviceWorker" in navigator)) return Promise.resolve();
    var saved = loadObject(OFFLINE_KEY);
    if (!now && saved && saved.user === USER && Date.now() - Date.parse(saved.saved_at) < SAVE_AGAIN_AFTER_MS) {
      return Promise.resolve();
    }
    if (saving) return saving;
    var status = $("[data-offline-status]", section);
    status.textContent = gettext("Saving your orders on this phone…");
    saving = fetch(section.dataset.offlineUrl, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok || response.redirected) throw new Error("bundle " + response.status);
        return response.json();
      })
      .then(function (bundle) {
        return saveInWorker(bundle.urls).then(function (result) {
          var record = {
            user: USER, saved_at: bundle.saved_at, orders: bundle.orders.length, assets: bundle.assets || [],
            bytes: result.bytes, failed: result.failed
          };
          save(OFFLINE_KEY, record);
          showSaved(record);
        });
      })
      .catch(function () {
        status.textContent = gettext("Could not save your orders for offline: try again when the connection is better.");
      })
      .then(function () { saving = null; });
    return saving;
  }

  // --- scanning an asset's label --------------------------------------------------------------------

  var scanStream = null;

  function assetUrlFor(text) {
    text = (text || "").trim();
    if (!text) return null;
    var link = text.match(/\/t\/assets\/([A-Za-z0-9_-]+)/);
    if (link) return ASSET_PREFIX + link[1] + "/";
    var saved = loadObject(OFFLINE_KEY);
    var lower = text.toLowerCase();
    var hit = ((saved && saved.user === USER && saved.assets) || []).filter(function (asset) {
      return asset.code.toLowerCase() === lower || asset.token === text;
    })[0];
    return hit ? ASSET_PREFIX + hit.token + "/" : null;
  }

  function openScanned(text, form) {
    var url = assetUrlFor(text);
    if (url) {
      closeScanner();
      location.assign(url);
      return;
    }
    if (form) {
      var message = interpolate(gettext("No asset “%(code)s” is saved on this phone: scan the label's QR code, or type the code printed under it."), { code: text.trim() }, true);
      markField(form, "code", message);
      showErrorAt(form, message);
    }
  }

  function closeScanner() {
    if (scanStream) scanStream.getTracks().forEach(function (track) { track.stop(); });
    scanStream = null;
    var panel = $("#scan-panel");
    if (panel) panel.hidden = true;
  }

  function openScanner() {
    var panel = $("#scan-panel");
    if (!panel) return;
    panel.hidden = false;
    panel.scrollIntoView({ block: "start" });
    var hint = $("[data-scan-hint]", panel);
    var video = $("[data-scan-video]", panel);
    if (!("BarcodeDetector" in window) || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      hint.textContent = gettext("This browser cannot read codes with the camera: type the code printed on the label.");
      $("#scan-code").focus();
      return;
    }
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
      scanStream = stream;
      video.srcObject = stream;
      video.hidden = false;
      return video.play();
    }).then(function () {
      var look = function () {
        if (!scanStream) return;
        detector.detect(video).then(function (codes) {
          var url = codes.length && assetUrlFor(codes[0].rawValue);
          if (url) openScanned(codes[0].rawValue, null);
          else setTimeout(look, 250);
        }, function () { setTimeout(look, 500); });
      };
      look();
    }).catch(function () {
      hint.textContent = gettext("The camera could not be opened: type the code printed on the label.");
      $("#scan-code").focus();
    });
  }

  // --- web push -------------------------------------------------------------------------------------

  function base64UrlBytes(text) {
    var padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function setUpPush() {
    var section = $("#push");
    if (!section || !("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) return;
    section.hidden = false;
    navigator.serviceWorker.ready.then(function (registration) {
      return registration.pushManager.getSubscription();
    }).then(function (subscription) {
      if (subscription && Notification.permission === "granted") {
        $("[data-push-status]", section).textContent = gettext("This phone is told of urgent work, even when the page is closed.");
      }
    }).catch(function () {});
  }

  function subscribePush() {
    var section = $("#push");
    var status = $("[data-push-status]", section);
    var registration = null;
    Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") throw new Error(gettext("Notifications are blocked for this site: allow them in the browser's settings."));
      return navigator.serviceWorker.ready;
    }).then(function (ready) {
      registration = ready;
      return fetch(section.dataset.pushKeyUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
    }).then(function (response) { return response.json(); }).then(function (key) {
      return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64UrlBytes(key.publicKey) });
    }).then(function (subscription) {
      return fetchToken().then(function (got) {
        return fetch(section.dataset.pushSubscribeUrl, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": got.token },
          body: JSON.stringify(subscription.toJSON())
        });
      });
    }).then(function (response) { return response.json(); }).then(function (data) {
      status.textContent = data.ok ? data.message : (data.error && data.error.message) || gettext("Could not subscribe.");
    }).catch(function (error) {
      status.textContent = error && error.message ? error.message : gettext("This phone cannot receive push notifications.");
    });
  }

  // --- start ----------------------------------------------------------------------------------------

  function start() {
    showConnection();
    myQueue().forEach(function (entry) { if (entry.page === location.pathname) markQueued(entry, null); });
    renderPanel();
    setUpPartSearch();
    var error = $("#error");
    var errorTarget = body.dataset.errorForm &&
      (document.querySelector('[data-form-name="' + body.dataset.errorForm + '"]') || document.getElementById(body.dataset.errorForm));
    if (error && errorTarget && !errorTarget.hidden) {
      showErrorAt(errorTarget, $("[data-error-message]", error).textContent);
    } else if (error) {
      error.focus();
    }
    showRefusalsHere();
    showSaved(loadObject(OFFLINE_KEY));
    setUpPush();
    connect();
    flush();
    if (PAGE === "my-work") saveForOffline(false);
  }

  start();
})();
