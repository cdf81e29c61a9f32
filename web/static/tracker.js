// Tracker page: send the chosen workbook / CSV files to POST /api/tracker/import with the
// session's CSRF token (X-CSRF-Token header: a multipart form cannot carry it for the check).
// Problems come back as "sheet 'Actions', row 3, column 'Due date': …" and are shown with
// textContent only: cell values come from users and must never become markup.
"use strict";

(function () {
  const form = document.getElementById("tracker-import");
  if (!form) return;
  const status = document.getElementById("import-status");
  const problems = document.getElementById("import-problems");

  function showProblems(items) {
    problems.textContent = "";
    for (const text of items) {
      const li = document.createElement("li");
      li.textContent = text;
      problems.appendChild(li);
    }
    problems.hidden = items.length === 0;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    status.textContent = "Importing…";
    showProblems([]);
    let response;
    try {
      response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-CSRF-Token": form.dataset.csrf, Accept: "application/json" },
        credentials: "same-origin",
      });
    } catch (error) {
      status.textContent = "Import failed: network error.";
      return;
    }
    let body = {};
    try {
      body = await response.json();
    } catch (error) {
      body = {};
    }
    if (response.ok) {
      const parts = ["actions", "training", "sessions"].map(function (name) {
        const done = body[name] || { created: 0, updated: 0 };
        return name + ": " + done.created + " created, " + done.updated + " updated";
      });
      status.textContent = "Imported. " + parts.join("; ") + ". Reloading…";
      window.setTimeout(function () { window.location.reload(); }, 800);
    } else {
      status.textContent = "Nothing was imported (" + response.status + "): " +
        (body.problems ? body.problems.length + " problem(s)" : body.detail || "error");
      showProblems(body.problems || []);
    }
  });
})();
