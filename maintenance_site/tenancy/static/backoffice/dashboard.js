// The dashboard's charts (templates/admin/index.html): a click on a bar opens the filtered list behind it, when
// the chart's wrapper carries links (data-links, one URL per bar). The charts themselves are drawn by the theme's
// script (django-unfold, Chart.js); Chart.getChart finds the chart of a canvas.
"use strict";

window.addEventListener("load", () => {
  for (const wrapper of document.querySelectorAll(".dashboard-chart__canvas[data-links]")) {
    const links = JSON.parse(wrapper.dataset.links || "[]");
    const canvas = wrapper.querySelector("canvas");
    if (!links.length || !canvas || !window.Chart) {
      continue;
    }
    canvas.classList.add("dashboard-chart--linked");
    canvas.addEventListener("click", (event) => {
      const chart = window.Chart.getChart(canvas);
      if (!chart) {
        return;
      }
      const hits = chart.getElementsAtEventForMode(event, "nearest", { intersect: true }, true);
      if (hits.length && links[hits[0].index]) {
        window.location.href = links[hits[0].index];
      }
    });
  }
});
