// Small progressive enhancements; pages work without it. No framework.
document.addEventListener("click", function (event) {
  var opener = event.target.closest("[data-open-dialog]");
  if (opener) {
    var dialog = document.getElementById(opener.getAttribute("data-open-dialog"));
    if (dialog && dialog.showModal) { event.preventDefault(); dialog.showModal(); }
  }
  var closer = event.target.closest("[data-close-dialog]");
  if (closer) { var d = closer.closest("dialog"); if (d) { event.preventDefault(); d.close(); } }
});
