// Swagger UI for the API document this Worker serves (loaded by GET /docs; no inline script, so
// the page's content security policy can forbid them).
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null, // no call to validator.swagger.io: the page works offline
});
