/* Scanning without the browser's Barcode Detection API (Chromium on Linux and desktop Firefox lack it): this loads
   the barcode-detector polyfill (ZXing-C++ compiled to WebAssembly; an npm dependency pinned in package.json and
   package-lock.json, served from our own static files, never from a CDN), which defines the same BarcodeDetector
   that technician.js's "Scan" uses, so the camera path is one code path. Its WebAssembly file is our static copy
   too (the service worker keeps both, so scanning works offline). Where the browser has the API, nothing is
   loaded. If the files are missing (no `npm ci`), Scan falls back to the typed code as before. */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || "BarcodeDetector" in window || !document.body.dataset.user) return;
  var polyfill = script.dataset.polyfill;
  var wasm = script.dataset.wasm;
  if (!polyfill || !wasm) return;
  var tag = document.createElement("script");
  tag.src = polyfill;
  tag.onload = function () {
    var api = window.BarcodeDetectionAPI;
    if (api && api.setZXingModuleOverrides) {
      api.setZXingModuleOverrides({
        locateFile: function (path, prefix) { return /\.wasm$/.test(path) ? wasm : prefix + path; }
      });
    }
    document.body.dataset.scanDecoder = "zxing-wasm";
  };
  document.head.appendChild(tag);
})();
