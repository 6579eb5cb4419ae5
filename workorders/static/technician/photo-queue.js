/* Photos taken offline: kept in IndexedDB (the blob itself, not in memory nor localStorage), so they survive a
   reload or a closed tab, and sent when the connection returns by the resumable upload API
   (/api/v1/work-orders/{id}/uploads/): the file is announced with its client id, then sent in pieces, each
   starting at the offset the server has. An upload cut in the middle continues from there; the server makes one
   attachment per client id (type, size and who may checked there), so sending again never adds a second photo.

   Online, the photo form posts as before (the page shows the server's answer); offline, its submit puts the photo
   in the queue, listed under the form ("waiting to send", then the progress); a refusal (not a photo, too large,
   the order no longer mine) stays listed beside the form with the server's message and a "Discard" button. Once a
   photo of the order on screen has arrived, the page's list of photos and files is fetched again, so it shows
   there without a reload (and the page's offline copy is updated through the service worker). */
(function () {
  "use strict";
  // Django's JavaScript catalogue (/t/jsi18n/), loaded before this script; English when it is not there.
  var gettext = window.gettext || function (text) { return text; };
  var interpolate = window.interpolate || function (format, values) {
    return format.replace(/%\((\w+)\)s/g, function (_, name) { return String(values[name]); });
  };

  var body = document.body;
  var USER = body.dataset.user ? Number(body.dataset.user) : null;
  var ORDER = body.dataset.order ? Number(body.dataset.order) : null;
  var script = document.currentScript;
  var UPLOADS = (script && script.dataset.uploads) || "/api/v1/work-orders/";
  var PIECE = Number((script && script.dataset.piece) || 262144);
  var DB_NAME = "technician-photos";
  var STORE = "photos";
  if (!USER || !("indexedDB" in window)) return;

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    return Array.prototype.map.call(b, function (x) { return x.toString(16).padStart(2, "0"); }).join("");
  }

  // --- IndexedDB ------------------------------------------------------------------------------------

  var opened = null;

  function db() {
    if (!opened) {
      opened = new Promise(function (resolve, reject) {
        var request = indexedDB.open(DB_NAME, 1);
        request.onupgradeneeded = function () { request.result.createObjectStore(STORE, { keyPath: "id" }); };
        request.onsuccess = function () { resolve(request.result); };
        request.onerror = function () { reject(request.error); };
      });
    }
    return opened;
  }

  function tx(mode, work) {
    return db().then(function (database) {
      return new Promise(function (resolve, reject) {
        var transaction = database.transaction(STORE, mode);
        var result = work(transaction.objectStore(STORE));
        transaction.oncomplete = function () { resolve(result && "result" in result ? result.result : undefined); };
        transaction.onerror = function () { reject(transaction.error); };
        transaction.onabort = function () { reject(transaction.error); };
      });
    });
  }

  function all() {
    return tx("readonly", function (store) { return store.getAll(); }).then(function (rows) {
      return (rows || []).filter(function (row) { return row.user === USER; });
    });
  }
  function put(record) { return tx("readwrite", function (store) { return store.put(record); }); }
  function remove(id) { return tx("readwrite", function (store) { return store.delete(id); }); }

  // --- the list under the photo form ----------------------------------------------------------------

  function form() { return document.querySelector('form[data-form-name="photo"]'); }

  function listElement() {
    var holder = form();
    if (!holder) return null;
    var list = document.querySelector("[data-photo-queue]");
    if (!list) {
      list = document.createElement("ul");
      list.className = "plain-list photo-queue";
      list.dataset.photoQueue = "";
      list.setAttribute("aria-live", "polite");
      holder.after(list);
    }
    return list;
  }

  function render() {
    var list = listElement();
    if (!list) return Promise.resolve();
    return all().then(function (rows) {
      list.textContent = "";
      rows.filter(function (row) { return row.order === ORDER; }).forEach(function (row) {
        var li = document.createElement("li");
        li.dataset.photo = row.id;
        li.className = row.refused ? "inline-error" : "is-queued-line";
        var percent = row.size ? Math.floor((100 * (row.offset || 0)) / row.size) : 0;
        li.textContent = row.name + " · " + (row.refused
          ? interpolate(gettext("not sent: %(reason)s"), { reason: row.refused }, true)
          : (row.offset
            ? interpolate(gettext("saved on this phone, waiting to send (%(percent)s sent)"), { percent: percent + "%" }, true)
            : gettext("saved on this phone, waiting to send")));
        if (row.refused) {
          li.setAttribute("role", "alert");
          var discard = document.createElement("button");
          discard.type = "button";
          discard.className = "button button--secondary";
          discard.dataset.photoDiscard = row.id;
          discard.textContent = gettext("Discard");
          li.appendChild(document.createTextNode(" "));
          li.appendChild(discard);
        }
        list.appendChild(li);
      });
      body.dataset.photosQueued = String(rows.filter(function (row) { return !row.refused; }).length);
    });
  }

  // --- queueing -------------------------------------------------------------------------------------

  function queuePhotos(event) {
    var target = event.target;
    if (!target.matches || !target.matches('form[data-form-name="photo"]') || navigator.onLine) return;
    event.preventDefault();
    event.stopPropagation(); // queued here: not "this needs a connection" (technician.js)
    var input = target.querySelector("input[type=file]");
    var files = input && input.files ? Array.prototype.slice.call(input.files) : [];
    var status = target.querySelector("[data-form-status]");
    if (!status) {
      status = document.createElement("p");
      status.setAttribute("role", "status");
      status.dataset.formStatus = "";
      target.appendChild(status);
    }
    if (!files.length) {
      status.textContent = gettext("Take or choose a photo first.");
      return;
    }
    var at = new Date().toISOString();
    Promise.all(files.map(function (file) {
      return put({
        id: uuid(), user: USER, order: ORDER, name: file.name || "photo.jpg", type: file.type, size: file.size,
        blob: file, offset: 0, at: at, version: body.dataset.version || null, refused: null
      });
    })).then(function () {
      target.reset();
      if (status) status.textContent = gettext("Saved on this phone: sent when the connection returns.");
      return render();
    }, function () {
      if (status) status.textContent = gettext("This phone could not keep the photo (storage full?).");
    });
  }

  // --- sending --------------------------------------------------------------------------------------

  function token() {
    return fetch(body.dataset.csrfUrl, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("token " + response.status);
        return response.json();
      })
      .then(function (data) { return data.csrfToken; });
  }

  function answer(response) {
    return response.json().catch(function () { return null; }).then(function (data) {
      return { status: response.status, data: data };
    });
  }

  function refuse(record, result) {
    record.refused = (result.data && result.data.error && result.data.error.message) || "refused (" + result.status + ")";
    return put(record);
  }

  function sendOne(record, csrf) {
    var base = UPLOADS + record.order + "/uploads/";
    var headers = { Accept: "application/json", "X-CSRFToken": csrf };
    var announce = fetch(base, {
      method: "POST", credentials: "same-origin",
      headers: Object.assign({ "Content-Type": "application/json" }, headers),
      body: JSON.stringify({ client_id: record.id, name: record.name, size: record.size, occurred_at: record.at })
    }).then(answer);
    var step = function (result) {
      if (result.status === 200 || result.status === 201) {
        if (result.data.complete) return remove(record.id).then(function () { return "done"; });
        record.offset = result.data.offset;
      } else if (result.status === 409 && result.data && result.data.error && result.data.error.code === "upload_offset_mismatch") {
        record.offset = result.data.error.offset;
      } else if ([400, 403, 404, 409, 413, 415, 422].indexOf(result.status) >= 0) {
        return refuse(record, result).then(function () { return "refused"; });
      } else {
        return "later"; // 5xx, maintenance mode, signed out: try again later
      }
      return put(record).then(render).then(function () {
        var piece = record.blob.slice(record.offset, record.offset + PIECE);
        return fetch(base + record.id + "/", {
          method: "PATCH", credentials: "same-origin",
          headers: Object.assign({ "Content-Type": "application/octet-stream", "Upload-Offset": String(record.offset) }, headers),
          body: piece
        }).then(answer).then(step);
      });
    };
    return announce.then(step);
  }

  function refreshAttachments() {
    // The order's "Photos and files" as the server has them now, in place of the list on screen.
    var here = document.querySelector("[data-attachments]");
    if (!here) return Promise.resolve();
    return fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok || response.redirected) throw new Error("page " + response.status);
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-attachments]");
        if (fresh) here.innerHTML = fresh.innerHTML;
      })
      .catch(function () { /* unreachable again: the list updates on the next visit */ });
  }

  var pumping = null;

  function pump() {
    if (pumping || !navigator.onLine) return pumping || Promise.resolve();
    pumping = all().then(function (rows) {
      var waiting = rows.filter(function (row) { return !row.refused; });
      if (!waiting.length) return;
      var arrivedHere = false;
      return token().then(function (csrf) {
        var next = function (index) {
          if (index >= waiting.length) return null;
          return sendOne(waiting[index], csrf).then(function (outcome) {
            if (outcome === "done" && waiting[index].order === ORDER) arrivedHere = true;
            if (outcome === "later") return null;
            return next(index + 1);
          });
        };
        return next(0);
      }).then(function () {
        if (arrivedHere) return refreshAttachments();
      });
    }).catch(function () { /* offline again or the server unreachable: the photos stay queued */ })
      .then(function () { pumping = null; return render(); });
    return pumping;
  }

  document.addEventListener("submit", queuePhotos, true); // before technician.js says "this needs a connection"
  document.addEventListener("click", function (event) {
    var discard = event.target.closest && event.target.closest("[data-photo-discard]");
    if (discard) remove(discard.dataset.photoDiscard).then(render);
  });
  window.addEventListener("online", function () { setTimeout(pump, 500); });
  setInterval(function () { if (navigator.onLine) pump(); }, 20000);
  render().then(pump);
  window.technicianPhotos = { pump: pump, pending: all }; // for the browser tests and the console
})();
