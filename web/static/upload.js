// Upload page: send the chosen files to POST /api/documents with the session's CSRF token
// (X-CSRF-Token header), show upload progress in the <progress> element, then poll the queued
// job (202 + Location: /api/jobs/{id}) for per-file progress and results.
// Served from /static so the Content-Security-Policy can forbid inline scripts. Results are
// inserted with textContent only: file names come from users and must never become markup.
"use strict";

(function () {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const progress = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const results = document.getElementById("upload-results");
  const tbody = results.querySelector("tbody");

  function row(file, result, details) {
    const tr = document.createElement("tr");
    for (const value of [file, result, details]) {
      const td = document.createElement("td");
      if (value instanceof Node) td.appendChild(value);
      else td.textContent = value;
      tr.appendChild(td);
    }
    tr.className = "result-" + result;
    tbody.appendChild(tr);
  }

  function reviewLinks(ids) {
    const span = document.createElement("span");
    span.textContent = "reviews ";
    ids.forEach(function (id, index) {
      const link = document.createElement("a");
      link.href = "/reviews/" + encodeURIComponent(Number(id));
      link.textContent = String(id);
      if (index > 0) span.appendChild(document.createTextNode(", "));
      span.appendChild(link);
    });
    return span;
  }

  function showProgress(job) {
    tbody.textContent = "";
    for (const file of job.files || []) {
      const waiting = file.state === "pending" || file.state === "running";
      if (waiting) row(file.original || file.path, file.state, file.state === "running" ? "reading, tagging and embedding…" : "waiting for a worker");
    }
    results.hidden = false;
    const p = job.progress || { done: 0, total: 0 };
    progress.max = Math.max(1, p.total);
    progress.value = p.done;
    status.textContent = (job.state === "queued" ? "Queued" : "Ingesting") + ": " + p.done + " of " + p.total + " files done.";
  }

  function poll(location) {
    const xhr = new XMLHttpRequest();
    xhr.open("GET", location);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    xhr.addEventListener("load", function () {
      const job = xhr.response || {};
      if (xhr.status === 200 && job.state === "done") {
        progress.value = progress.max;
        status.textContent = "Done.";
        show(job);
      } else if (xhr.status === 200) {
        showProgress(job);
        setTimeout(function () { poll(location); }, 1500);
      } else {
        const wait = Number(xhr.getResponseHeader("Retry-After") || 0);
        if (xhr.status === 503 && wait > 0) {
          setTimeout(function () { poll(location); }, wait * 1000);
        } else {
          status.textContent = "Could not read the upload's progress (" + xhr.status + ").";
        }
      }
    });
    xhr.addEventListener("error", function () {
      setTimeout(function () { poll(location); }, 3000);
    });
    xhr.send();
  }

  function show(report) {
    tbody.textContent = "";
    for (const item of report.ingested || []) {
      row(item.original || item.path, "ingested", reviewLinks(item.reviews || []));
    }
    for (const item of report.skipped || []) row(item.original || item.path, "skipped", item.reason);
    for (const item of report.failed || []) row(item.original || item.path, "failed", item.error);
    results.hidden = false;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const data = new FormData(form);
    for (const [key, value] of Array.from(data.entries())) {
      if (value === "") data.delete(key);
    }
    const xhr = new XMLHttpRequest(); // fetch() has no upload progress events
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    progress.hidden = false;
    progress.value = 0;
    status.textContent = "Uploading…";
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) progress.value = Math.round((e.loaded / e.total) * 100);
    });
    xhr.upload.addEventListener("load", function () {
      progress.removeAttribute("value"); // indeterminate until the job answers
      status.textContent = "Queued…";
    });
    xhr.addEventListener("load", function () {
      progress.value = 100;
      const body = xhr.response || {};
      if (xhr.status === 202) {
        form.reset();
        showProgress(body);
        poll(xhr.getResponseHeader("Location") || "/api/jobs/" + encodeURIComponent(Number(body.id)));
      } else {
        status.textContent = "Upload refused (" + xhr.status + "): " + (body.detail || "error");
      }
    });
    xhr.addEventListener("error", function () {
      status.textContent = "Upload failed: network error.";
    });
    xhr.send(data);
  });
})();
