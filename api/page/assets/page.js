// Lapse staff page: progressive enhancement only. Without this file every form still works
// as a plain POST; with it, acknowledging a member records the action without a reload and
// moves the member from "To do" to "Contacted".
"use strict";

(function () {
  function announce(text) {
    var region = document.getElementById("announce");
    if (!region) return;
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  function setCount(id, delta) {
    var el = document.getElementById(id);
    if (el) el.textContent = String(Math.max(0, parseInt(el.textContent, 10) + delta));
  }

  function actionLine(data) {
    var li = document.createElement("li");
    li.textContent = data.label + " · " + data.taken_at_text;
    if (data.note) {
      var q = document.createElement("q");
      q.className = "note";
      q.textContent = data.note;
      li.appendChild(document.createTextNode(" "));
      li.appendChild(q);
    }
    return li;
  }

  function acknowledged(form, data) {
    var item = form.closest("li.member");
    var contacted = document.getElementById("contacted-list");
    var list = document.createElement("ul");
    list.className = "actions";
    list.setAttribute("aria-label", form.getAttribute("data-actions") || "Actions taken");
    list.appendChild(actionLine(data));
    form.replaceWith(list);
    var last = item ? item.querySelector(".last-contact") : null;
    if (last && data.last_contact_text) last.textContent = data.last_contact_text;
    if (!item || !contacted || !item.closest("#todo-list")) {
      announce(data.recorded_text || "Recorded: " + data.label + ".");
      return;
    }
    // Focus goes to the next member to do (or the list heading), not lost with the item.
    var next = item.nextElementSibling || item.previousElementSibling;
    contacted.insertBefore(item, contacted.firstChild);
    setCount("todo-count", -1);
    setCount("contacted-count", 1);
    var target = next ? next.querySelector("h3") : document.getElementById("todo-h");
    if (target) {
      if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
      target.focus();
    }
    announce(data.moved_text || "Recorded: " + data.label + " for member " + data.member_id +
      ". Moved to Contacted.");
  }

  function enhance(form) {
    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      if (!submitter || submitter.name !== "action") return; // let the browser handle it
      event.preventDefault();
      var status = form.querySelector(".form-status");
      // The page's language: the server wrote these words on the form.
      var failed = form.getAttribute("data-failed") || "The action was not recorded.";
      var retry = form.getAttribute("data-retry") || "Please try again.";
      var buttons = form.querySelectorAll("button");
      var body = new URLSearchParams(new FormData(form, submitter));
      buttons.forEach(function (b) { b.disabled = true; });
      if (status) status.textContent = "";
      fetch(form.getAttribute("action"), {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "Accept": "application/json" }
      }).then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; });
      }).then(function (result) {
        if (!result.ok) throw new Error(result.data.detail || failed);
        acknowledged(form, result.data);
      }).catch(function (error) {
        buttons.forEach(function (b) { b.disabled = false; });
        var text = error && error.message ? error.message : failed;
        if (status) status.textContent = text + " " + retry;
        announce(text);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-enhance='ack']").forEach(enhance);
  });
})();
