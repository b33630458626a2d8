// The console's own script (the pages work without it): warns before leaving a page
// whose form has changes not saved, so an edit is never lost silently.
(function () {
  "use strict";
  var dirty = null;
  function touched(e) {
    var f = e.target && e.target.form;
    if (f && (f.getAttribute("method") || "").toLowerCase() === "post") {
      dirty = f;
    }
  }
  document.addEventListener("input", touched);
  document.addEventListener("change", touched);
  document.addEventListener("submit", function (e) {
    if (e.target === dirty) {
      dirty = null;
    }
  });
  window.addEventListener("beforeunload", function (e) {
    if (dirty) {
      e.preventDefault();
      e.returnValue = "";
    }
  });
})();
