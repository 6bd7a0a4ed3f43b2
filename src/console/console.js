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

// Sync response upload: the file goes as the raw body with the session's CSRF token in a
// header, and the one-line answer (summary or refusal reason) is shown on the page.
document.addEventListener("submit", function (ev) {
  var form = ev.target;
  var url = form.getAttribute("data-upload");
  if (!url) { return; }
  ev.preventDefault();
  var out = document.getElementById(form.getAttribute("data-result"));
  var input = form.querySelector("input[type=file]");
  var token = form.querySelector("input[name=csrf]");
  var button = form.querySelector("button[type=submit]");
  var show = function (cls, text) {
    if (!out) { return; }
    out.hidden = false;
    out.className = cls;
    out.textContent = text;
    if (out.scrollIntoView) { out.scrollIntoView({ block: "center" }); }
  };
  if (!input || !input.files || input.files.length === 0) {
    show("error", "Choose a response file first.");
    return;
  }
  if (button) { button.disabled = true; }
  show("muted", "Verifying and applying the file…");
  fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/zip", "X-CSRF-Token": token ? token.value : "" },
    body: input.files[0]
  }).then(function (r) {
    var plain = (r.headers.get("Content-Type") || "").indexOf("text/plain") === 0;
    if (r.redirected) {
      // Only an ended session redirects here (to the sign-in page).
      show("error", "Your session has ended: sign in again, then import the file.");
      return null;
    }
    return r.text().then(function (text) {
      show(r.ok && plain ? "notice" : "error", plain ? text.trim() : (r.status + " " + r.statusText));
    });
  }).catch(function (e) {
    show("error", "The upload failed: " + e.message);
  }).then(function () {
    if (button) { button.disabled = false; }
  });
});
