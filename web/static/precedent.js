// Precedent page: send the uploaded notification to POST /precedent/upload with the session's
// CSRF token (X-CSRF-Token header: multipart forms cannot carry it past the CSRF middleware)
// and show the page the server renders. Served from /static (the CSP forbids inline scripts).
"use strict";

(function () {
  const form = document.getElementById("precedent-upload");
  if (!form) return;
  form.addEventListener("submit", function (event) {
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
})();
