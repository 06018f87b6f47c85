// Behaviour every vmprov page shares, in a static file (the Content-Security-Policy allows no inline script):
// a confirmation before buttons marked data-confirm act, focus on a form's error summary so that people
// (and screen readers) start from what went wrong, and the live request's current step counting its time on
// between polls (a poll answers 204 while nothing changed, which keeps the old text).
(function () {
  "use strict";
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });
  const summary = document.getElementById("error-summary");
  if (summary) summary.focus();

  // As provisioning.timeline.duration_text words it: "4 s", "3 min 20 s", "2 h 5 min", "3 d 4 h".
  const duration = (total) => {
    let seconds = Math.max(0, Math.round(total));
    if (seconds < 60) return `${seconds} s`;
    let minutes = Math.floor(seconds / 60);
    seconds %= 60;
    if (minutes < 60) return seconds && minutes < 10 ? `${minutes} min ${seconds} s` : `${minutes} min`;
    let hours = Math.floor(minutes / 60);
    minutes %= 60;
    if (hours < 24) return minutes ? `${hours} h ${minutes} min` : `${hours} h`;
    const days = Math.floor(hours / 24);
    hours %= 24;
    return hours ? `${days} d ${hours} h` : `${days} d`;
  };
  window.setInterval(() => {
    for (const element of document.querySelectorAll("[data-took]")) {
      element.dataset.seenAt ||= String(Date.now());
      const took = Number(element.dataset.took) + (Date.now() - Number(element.dataset.seenAt)) / 1000;
      element.textContent = `for ${duration(took)}`;
    }
  }, 1000);
})();
