// airlock serve: a light touch, never needed. Every decision works
// without it (plain forms). It adds: click a file's header to fold its
// diff, and `j`/`k` to move between files.
(function () {
  "use strict";
  var files = Array.prototype.slice.call(document.querySelectorAll("article.file"));
  files.forEach(function (file) {
    var header = file.querySelector("header");
    if (!header) return;
    header.addEventListener("click", function (ev) {
      if (ev.target.closest("a")) return;
      file.classList.toggle("collapsed");
    });
  });
  var current = -1;
  document.addEventListener("keydown", function (ev) {
    if (ev.target.closest("textarea, input") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key !== "j" && ev.key !== "k") return;
    if (files.length === 0) return;
    current = Math.max(0, Math.min(files.length - 1, current + (ev.key === "j" ? 1 : -1)));
    files[current].scrollIntoView({ block: "start" });
  });
})();
