// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  var lang = document.documentElement.lang === "en" ? "en" : "pl";
  function format(n) {
    return lang === "en" ? n.toLocaleString("en-GB") : String(n).replace(/\B(?=(\d{3})+(?!\d))/g, "\u00a0");
  }
  // Live character count (polite: announced when the typing pauses).
  document.querySelectorAll("textarea[data-maxlength]").forEach(function (area) {
    var counter = document.getElementById(area.id + "-count");
    if (!counter) { return; }
    var max = parseInt(area.getAttribute("data-maxlength"), 10);
    var template = counter.getAttribute("data-template-" + lang);
    counter.setAttribute("aria-live", "polite");
    var timer = null;
    function update() {
      var n = area.value.trim().length;
      counter.textContent = template.replace("{n}", format(n)).replace("{max}", format(max));
      counter.classList.toggle("over", n > max);
    }
    area.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(update, 400);
    });
  });
  // One submission per click: the form's Idempotency-Key already makes a second POST
  // harmless; this also stops the second click from sending it at all.
  document.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-sent")) { event.preventDefault(); return; }
      form.setAttribute("data-sent", "1");
      form.querySelectorAll("button[type=submit]").forEach(function (b) {
        b.setAttribute("aria-disabled", "true");
      });
    });
  });
  document.querySelectorAll("button[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
})();
