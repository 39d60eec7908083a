// Starts Swagger UI on /docs (a file, not inline, so the page's CSP allows no inline script).
"use strict";
var root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.getAttribute("data-openapi-url"),
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis],
  validatorUrl: null
});
