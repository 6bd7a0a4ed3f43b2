// satellite console: copy buttons and confirmations. Loaded from the binary; no inline handlers
// (the Content-Security-Policy forbids them).
"use strict";
document.addEventListener("click", function (ev) {
  var btn = ev.target.closest("[data-copy]");
  if (!btn) { return; }
  var src = document.getElementById(btn.getAttribute("data-copy"));
  if (!src) { return; }
  var text = src.textContent.trim();
  var done = function () {
    btn.textContent = "Copied";
    setTimeout(function () { btn.textContent = "Copy"; }, 1500);
  };
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(text).then(done, function () { fallback(src); done(); });
  } else {
    fallback(src);
    done();
  }
});

function fallback(el) {
  var range = document.createRange();
  range.selectNodeContents(el);
  var sel = window.getSelection();
  sel.removeAllRanges();
  sel.addRange(range);
  try { document.execCommand("copy"); } catch (e) { /* the text stays selected for the user */ }
}

document.addEventListener("submit", function (ev) {
  var form = ev.target;
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    ev.preventDefault();
  }
});
