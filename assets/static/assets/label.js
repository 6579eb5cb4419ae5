// The label page's Print button (a script file: the Content-Security-Policy allows no inline handler).
document.querySelectorAll("[data-print]").forEach((button) => button.addEventListener("click", () => window.print()));
