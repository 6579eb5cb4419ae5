// The planner's calendar and the dispatch board (templates/scheduling/planning/*.html): native drag and drop of
// work orders onto a day, an hour, or a person's day; each drop is posted to the move endpoint, which calls the
// work-order services, and the answer (done, or the refusal's sentence) is shown in #planning-message. The grid is
// then redrawn from the server (?fragment=1). On the board, the event socket (/ws/events/) redraws it whenever a
// work order changes, whoever changed it.
"use strict";

(() => {
  const root = document.getElementById("planning");
  const grid = document.getElementById("planning-grid");
  if (!root || !grid) {
    return;
  }
  const page = root.dataset.page;
  const message = document.getElementById("planning-message");
  const csrf = root.querySelector("input[name=csrfmiddlewaretoken]");
  let dragged = null;

  function show(text, tone) {
    message.textContent = text;
    message.className = `planning-message planning-message--${tone}`;
    message.setAttribute("role", tone === "error" ? "alert" : "status");
    message.hidden = false;
  }

  let refreshing = null;
  async function refresh() {
    if (refreshing) {
      return refreshing;
    }
    const url = new URL(grid.dataset.fragmentUrl, window.location.href);
    url.searchParams.set("fragment", "1");
    refreshing = fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then((response) => (response.ok ? response.text() : null))
      .then((html) => {
        if (html !== null) {
          grid.innerHTML = html;
          grid.dataset.refreshed = String(Number(grid.dataset.refreshed || 0) + 1);
        }
      })
      .finally(() => {
        refreshing = null;
      });
    return refreshing;
  }

  grid.addEventListener("dragstart", (event) => {
    const item = event.target.closest("[draggable=true][data-kind=work_order]");
    if (!item) {
      return;
    }
    dragged = item;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", item.dataset.id);
  });

  grid.addEventListener("dragover", (event) => {
    const slot = event.target.closest(".planning-slot");
    if (dragged && slot) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      slot.classList.add("planning-slot--target");
    }
  });

  grid.addEventListener("dragleave", (event) => {
    const slot = event.target.closest(".planning-slot");
    if (slot) {
      slot.classList.remove("planning-slot--target");
    }
  });

  grid.addEventListener("drop", async (event) => {
    const slot = event.target.closest(".planning-slot");
    if (!dragged || !slot) {
      return;
    }
    event.preventDefault();
    slot.classList.remove("planning-slot--target");
    const body = { order: Number(dragged.dataset.id), day: slot.dataset.day || null };
    if (page === "board") {
      body.assignee = slot.dataset.assignee ? Number(slot.dataset.assignee) : null;
    } else {
      body.time = slot.dataset.time || dragged.dataset.time || null;
    }
    dragged = null;
    let answer = null;
    try {
      const response = await fetch(root.dataset.moveUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.value : "" },
        body: JSON.stringify(body),
      });
      answer = await response.json();
    } catch (error) {
      show(`Not moved: the server could not be reached (${error}).`, "error");
      return;
    }
    if (answer.ok) {
      show(`Moved: ${answer.message}`, "done");
    } else {
      show(`Not moved: ${answer.error ? answer.error.message : "refused."}`, "error");
    }
    await refresh();
  });

  grid.addEventListener("dragend", () => {
    dragged = null;
  });

  // --- live updates (the board) ------------------------------------------------------------------------------
  const live = document.getElementById("planning-live");
  function listen(delay) {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${window.location.host}${root.dataset.eventsUrl}`);
    socket.addEventListener("open", () => {
      if (live) {
        live.textContent = "live updates: on";
        live.dataset.state = "on";
      }
    });
    socket.addEventListener("message", (event) => {
      let data = null;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      if (data.type === "event" && data.event && String(data.event.type || "").startsWith("work-order:")) {
        refresh();
      }
    });
    socket.addEventListener("close", () => {
      if (live) {
        live.textContent = "live updates: reconnecting";
        live.dataset.state = "off";
      }
      window.setTimeout(() => listen(Math.min(delay * 2, 30000)), delay);
    });
  }
  if (page === "board" && root.dataset.eventsUrl && "WebSocket" in window) {
    listen(1000);
  }
})();
