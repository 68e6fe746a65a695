// Resource Graph Explorer: Ctrl+Enter runs the query; an error puts the cursor where it is. Works without it.
(function () {
  function query() { return document.getElementById("graph-query"); }
  function showError() {
    var results = document.getElementById("graph-results");
    var box = query();
    if (!results || !box || !results.dataset.errorLine) return;
    var line = parseInt(results.dataset.errorLine, 10), column = parseInt(results.dataset.errorColumn, 10);
    var lines = box.value.split("\n"), offset = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
    offset += Math.max(0, column - 1);
    box.focus();
    box.setSelectionRange(offset, Math.min(box.value.length, offset + 1));
  }
  document.addEventListener("keydown", function (event) {
    if (event.target === query() && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      document.getElementById("graph-run").click();
    }
  });
  // A query error answers 400 with the results fragment (the error at its line): show it like any result.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status === 400 && event.detail.target && event.detail.target.id === "graph-results") {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("DOMContentLoaded", showError);
  document.addEventListener("htmx:afterSettle", showError);
})();
