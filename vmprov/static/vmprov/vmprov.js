// Behaviour every vmprov page shares, in a static file (the Content-Security-Policy allows no inline script):
// a confirmation before buttons marked data-confirm act, and focus on a form's error summary so that people
// (and screen readers) start from what went wrong.
(function () {
  "use strict";
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });
  const summary = document.getElementById("error-summary");
  if (summary) summary.focus();
})();
