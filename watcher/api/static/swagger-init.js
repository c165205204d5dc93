// Starts Swagger UI on /api/v1/docs. A file, not an inline script: the page's CSP runs scripts
// from 'self' only. The OpenAPI document's URL comes from the page (data-openapi).
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapi,
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
