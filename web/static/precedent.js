// Precedent page: send the uploaded notification to POST /precedent/upload with the session's
// CSRF token (X-CSRF-Token header: multipart forms cannot carry it past the CSRF middleware)
// and show the page the server renders. Served from /static (the CSP forbids inline scripts).
// The listener sits on the document, not on the form, so the upload form of the page the
// server sends back (which replaces the body) works the same way.
"use strict";

document.addEventListener("submit", function (event) {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || form.id !== "precedent-upload") return;
  event.preventDefault();
  fetch(form.action, {
    method: "POST",
    body: new FormData(form),
    headers: { "X-CSRF-Token": form.dataset.csrf },
    credentials: "same-origin",
  })
    .then(function (response) { return response.text(); })
    .then(function (html) {
      const page = new DOMParser().parseFromString(html, "text/html");
      document.title = page.title;
      document.body.replaceWith(document.adoptNode(page.body));
    });
});
