// Machines blade: row selection for the bulk commands, filters that apply on change, dialogs re-opened
// with their errors. Progressive enhancement only; the pages work without it. No framework.
(function () {
  function selected() { return document.querySelectorAll(".row-select:checked"); }

  function updateSelection() {
    var count = selected().length;
    document.querySelectorAll(".needs-selection").forEach(function (button) { button.disabled = count === 0; });
    var label = document.querySelector(".selection-count");
    if (label) { label.textContent = count ? count + " selected" : ""; }
    var names = Array.prototype.map.call(selected(), function (box) { return box.getAttribute("data-name"); });
    document.querySelectorAll(".dialog-selection").forEach(function (line) {
      line.textContent = count ? count + (count === 1 ? " machine selected: " : " machines selected: ") +
        names.slice(0, 5).join(", ") + (count > 5 ? ", …" : "") : "";
    });
    var all = document.getElementById("select-all");
    var boxes = document.querySelectorAll(".row-select");
    if (all) { all.checked = boxes.length > 0 && count === boxes.length; all.indeterminate = count > 0 && count < boxes.length; }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-all") {
      document.querySelectorAll(".row-select").forEach(function (box) { box.checked = target.checked; });
    }
    if (target.matches && target.matches("#select-all, .row-select")) { updateSelection(); }
    var form = target.closest && target.closest("form[data-autosubmit]");
    if (form && target.tagName === "SELECT") { form.requestSubmit(); }
  });

  document.addEventListener("htmx:afterSettle", updateSelection);
  document.addEventListener("DOMContentLoaded", function () {
    updateSelection();
    document.querySelectorAll("dialog[data-open-on-load]").forEach(function (dialog) {
      if (dialog.open) { dialog.close(); }
      if (dialog.showModal) { dialog.showModal(); }
    });
  });
})();
