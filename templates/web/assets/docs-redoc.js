// Starts ReDoc on /redoc (a file, not inline, so the page's CSP allows no inline script).
"use strict";
var root = document.getElementById("redoc");
Redoc.init(root.getAttribute("data-openapi-url"), { hideDownloadButton: false }, root);
