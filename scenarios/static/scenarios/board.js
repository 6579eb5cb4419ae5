// The scenario board, live (templates/admin/scenarios/scenario/change_list.html): listens on the superusers'
// platform socket (/ws/platform/, maintenance_site/events/platform_consumer.py) from the sequence the page was drawn
// at, so nothing committed in between is missed.
// - A scenario event (scenario:activated, -deactivated, -updated, -run-started, -run-finished) re-reads this very
//   page (same filters) and swaps the board's state block and, row by row, the cells of the scenarios shown; the
//   rows' checkboxes stay, so a selection for a bulk action survives.
// - platform:resources-sampled adds its point to the resource chart (drawn by the theme's script: django-unfold's
//   Chart.js; Chart.getChart finds the chart of a canvas), at most one per the chart's step, and moves the window.
// After a dropped connection it reconnects with ?after=<last sequence> (the server replays what was missed) and
// re-reads the page once. 4401 / 4403 (signed out, no longer a platform administrator) end it.
"use strict";

(() => {
  const board = document.getElementById("scenario-board");
  if (!board || !window.WebSocket) {
    return;
  }
  const chartBox = document.getElementById("resource-chart");
  const live = chartBox ? JSON.parse(chartBox.dataset.liveChart || "{}") : {};
  let lastSlot = live.last_slot ? Date.parse(live.last_slot) : 0;
  let after = Number(board.dataset.after || 0);
  let retry = 1000;
  let connectedOnce = false;
  let refreshTimer = null;
  let refreshing = false;
  let refreshAgain = false;

  const setLive = (on) => {
    board.dataset.live = on ? "on" : "off";
    const label = board.querySelector("[data-live-label]");
    if (label) {
      label.textContent = on ? label.dataset.on : label.dataset.off; // the page's words, in the reader's language
    }
  };

  const swapRows = (fresh) => {
    for (const row of fresh.querySelectorAll("#result_list tr.data-row")) {
      const box = row.querySelector("input.action-select");
      const mine = box && document.querySelector(`#result_list input.action-select[value="${CSS.escape(box.value)}"]`);
      const myRow = mine && mine.closest("tr");
      if (!myRow || myRow.children.length !== row.children.length) {
        continue;
      }
      Array.from(row.children).forEach((cell, index) => {
        if (!cell.querySelector("input.action-select")) {
          myRow.children[index].innerHTML = cell.innerHTML;
        }
      });
    }
  };

  const refresh = async () => {
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = true;
    try {
      const response = await fetch(window.location.href, { credentials: "same-origin" });
      if (!response.ok) {
        return;
      }
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      const state = fresh.getElementById("scenario-board-state");
      const mine = document.getElementById("scenario-board-state");
      if (state && mine) {
        mine.innerHTML = state.innerHTML;
      }
      swapRows(fresh);
      board.dataset.refreshed = String(Number(board.dataset.refreshed || 0) + 1);
    } catch (error) {
      console.warn("scenario board: could not re-read the page", error);
    } finally {
      refreshing = false;
      if (refreshAgain) {
        refreshAgain = false;
        refresh();
      }
    }
  };

  const scheduleRefresh = () => {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 150); // a preset or stop-all sends several events at once: one re-read
  };

  const showUsage = (point) => {
    const figures = {
      cpu_percent: `${Math.round(point.cpu_percent)}%`,
      memory_percent: `${Math.round(point.memory_percent)}%`,
      disk_percent: point.disk_percent === null ? null : `${Math.round(point.disk_percent)}%`,
      load_average: point.load_1 === null ? null : [point.load_1, point.load_5, point.load_15].join(" / "),
    };
    for (const [name, text] of Object.entries(figures)) {
      const element = board.querySelector(`[data-usage="${name}"]`);
      if (element && text !== null) {
        element.textContent = text;
      }
    }
  };

  const addSample = (point) => {
    if (!chartBox || (live.host && point.host !== live.host)) {
      return;
    }
    live.host = live.host || point.host;
    showUsage(point);
    const slot = Date.parse(point.slot);
    if (lastSlot && slot < lastSlot + (live.step || 60) * 1000) {
      return; // within the chart's current step: the figures above show it, the chart keeps its spacing
    }
    const canvas = chartBox.querySelector("canvas");
    const chart = canvas && window.Chart ? window.Chart.getChart(canvas) : null;
    if (!chart) {
      return;
    }
    chart.data.labels.push(live.label_format === "date_time" ? point.label_date_time : point.label_time);
    const values = [point.cpu_percent, point.memory_percent, point.disk_percent, point.load_1];
    chart.data.datasets.forEach((dataset, index) => dataset.data.push(values[index] ?? null));
    while (chart.data.labels.length > (live.max_points || 120)) {
      chart.data.labels.shift();
      chart.data.datasets.forEach((dataset) => dataset.data.shift());
    }
    chart.update("none");
    lastSlot = slot;
    chartBox.dataset.points = String(chart.data.labels.length);
  };

  const handle = (event) => {
    if (typeof event.sequence === "number" && event.sequence > after) {
      after = event.sequence;
    }
    if (event.type === "platform:resources-sampled") {
      addSample(event.payload || {});
    } else if (event.type.startsWith("scenario:")) {
      scheduleRefresh();
    }
  };

  const connect = () => {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${window.location.host}${board.dataset.socket}?after=${after}`);
    socket.addEventListener("open", () => {
      setLive(true);
      retry = 1000;
      if (connectedOnce) {
        scheduleRefresh(); // whatever the replay cannot say (rows added by discovery, times moving on)
      }
      connectedOnce = true;
    });
    socket.addEventListener("message", (message) => {
      const data = JSON.parse(message.data);
      if (data.type === "event") {
        handle(data.event);
      }
    });
    socket.addEventListener("close", (closed) => {
      setLive(false);
      if (closed.code === 4401 || closed.code === 4403 || closed.code === 4400) {
        return;
      }
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    });
  };

  // After the theme has drawn the charts (it does so on load).
  if (document.readyState === "complete") {
    connect();
  } else {
    window.addEventListener("load", connect);
  }
})();
