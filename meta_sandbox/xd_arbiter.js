/* The sandbox SDK's return page: hands the dialog's answer (code, or error) to the page that
   called FB.login, at the origin that page gave, then waits for that page to close it. */
(function (window) {
  "use strict";
  var query = new URLSearchParams(window.location.search);
  var origin = query.get("origin");
  var message = { type: "fb-sandbox-login", nonce: query.get("nonce"), code: query.get("code"),
                  error: query.get("error"), granted_scopes: query.get("granted_scopes") };
  if (window.opener && origin) {
    window.opener.postMessage(message, origin);
  }
})(window);
