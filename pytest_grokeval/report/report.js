// The --grok-html page's behaviour: filters (kept in the URL hash), expanding rows, download.
// Plain ES5-level DOM code with no library, so that any browser opens the file offline.
(function () {
  "use strict";
  var root = document.documentElement;
  // The page records its own script errors, so that an automated check sees them in the DOM.
  window.addEventListener("error", function (event) {
    root.setAttribute("data-js-error", String(event.message));
  });

  var cases = Array.prototype.slice.call(document.querySelectorAll("tbody.case"));
  var fields = {
    status: document.getElementById("f-status"),
    suite: document.getElementById("f-suite"),
    change: document.getElementById("f-change"),
    q: document.getElementById("f-text")
  };
  var shown = document.getElementById("shown");
  var empty = document.getElementById("empty");
  // Hidden detail rows are searched too: the prompt and response texts live there.
  var haystacks = cases.map(function (c) { return c.textContent.toLowerCase(); });

  function value(name) {
    var field = fields[name];
    return field ? field.value.trim() : "";
  }

  function apply() {
    var status = value("status"), suite = value("suite"), change = value("change");
    var q = value("q").toLowerCase();
    var count = 0;
    cases.forEach(function (c, i) {
      var changes = " " + (c.getAttribute("data-change") || "") + " ";
      var match = (!status || c.getAttribute("data-status") === status) &&
        (!suite || c.getAttribute("data-suite") === suite) &&
        (!change || changes.indexOf(" " + change + " ") >= 0) &&
        (!q || haystacks[i].indexOf(q) >= 0);
      c.hidden = !match;
      if (match) { count += 1; }
    });
    shown.textContent = count + " of " + cases.length + " cases";
    empty.hidden = count > 0;
  }

  function writeHash() {
    var parts = [];
    Object.keys(fields).forEach(function (name) {
      if (value(name)) { parts.push(name + "=" + encodeURIComponent(value(name))); }
    });
    try {
      history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname);
    } catch (ignored) {
      // Some browsers refuse history changes on file:// pages; the filters still work.
    }
  }

  function readHash() {
    var hash = location.hash.slice(1);
    if (hash.indexOf("case-") === 0) { reveal(hash); return; }
    hash.split("&").forEach(function (part) {
      var eq = part.indexOf("=");
      if (eq < 0) { return; }
      var field = fields[part.slice(0, eq)];
      if (field) { field.value = decodeURIComponent(part.slice(eq + 1).replace(/\+/g, " ")); }
    });
    apply();
  }

  function toggle(row, open) {
    var detail = row.nextElementSibling;
    detail.hidden = !open;
    row.setAttribute("aria-expanded", open ? "true" : "false");
  }

  function reveal(id) {
    var target = document.getElementById(id);
    if (!target) { return; }
    Object.keys(fields).forEach(function (name) { if (fields[name]) { fields[name].value = ""; } });
    apply();
    toggle(target.querySelector("tr.row"), true);
    target.scrollIntoView({block: "start"});
  }

  document.getElementById("cases").addEventListener("click", function (event) {
    var row = event.target.closest("tr.row");
    if (row) { toggle(row, row.getAttribute("aria-expanded") !== "true"); }
  });
  document.getElementById("cases").addEventListener("keydown", function (event) {
    var row = event.target.closest("tr.row");
    if (row && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      toggle(row, row.getAttribute("aria-expanded") !== "true");
    }
  });
  Object.keys(fields).forEach(function (name) {
    if (!fields[name]) { return; }
    fields[name].addEventListener("input", function () { apply(); writeHash(); });
  });
  window.addEventListener("hashchange", readHash);

  var download = document.getElementById("download");
  download.addEventListener("click", function () {
    var text = document.getElementById("grokeval-report").textContent;
    download.href = URL.createObjectURL(new Blob([text], {type: "application/json"}));
  });

  readHash();
  root.setAttribute("data-ready", "true");
}());
