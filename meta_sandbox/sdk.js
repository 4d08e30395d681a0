/* The Meta sandbox's stand-in for Meta's JavaScript SDK (connect.facebook.net/<locale>/sdk.js):
   FB.init, FB.login (a real popup to the sandbox's login dialog; the code comes back through the
   sandbox's xd_arbiter page), FB.getLoginStatus, FB.getAuthResponse, FB.logout. Like Meta's, it
   calls the page's window.fbAsyncInit once FB exists. Served by the sandbox, which writes its
   own base URL below. */
(function (window) {
  "use strict";
  var BASE = __BASE__;
  var DEFAULT_VERSION = __VERSION__;
  var BASE_ORIGIN = new URL(BASE).origin;
  var settings = { appId: null, version: DEFAULT_VERSION };
  var state = { status: "unknown", authResponse: null };
  var pending = null;

  function finish(response) {
    if (!pending) { return; }
    var entry = pending;
    pending = null;
    window.clearInterval(entry.timer);
    window.removeEventListener("message", entry.listener);
    state = response;
    try { if (!entry.popup.closed) { entry.popup.close(); } } catch (ignored) { /* gone */ }
    entry.callback({ status: response.status, authResponse: response.authResponse });
  }

  function cancelled() { return { status: "unknown", authResponse: null }; }

  var FB = {
    __sandbox: BASE,
    init: function (options) {
      options = options || {};
      settings.appId = options.appId ? String(options.appId) : null;
      if (options.version) { settings.version = String(options.version); }
    },
    getLoginStatus: function (callback) {
      if (callback) { callback({ status: state.status, authResponse: state.authResponse }); }
    },
    getAuthResponse: function () { return state.authResponse; },
    logout: function (callback) {
      state = cancelled();
      if (callback) { callback(cancelled()); }
    },
    login: function (callback, options) {
      callback = callback || function () {};
      options = options || {};
      if (!settings.appId) { throw new Error("FB.login() called before FB.init()."); }
      if (pending) { finish(cancelled()); }  // a second FB.login replaces the first
      var nonce = Math.random().toString(36).slice(2) + Date.now().toString(36);
      var back = BASE + "/x/connect/xd_arbiter?" +
        new URLSearchParams({ origin: window.location.origin, nonce: nonce }).toString();
      var params = { client_id: settings.appId, redirect_uri: back, display: "popup",
                     response_type: options.response_type || "code", state: nonce };
      if (options.scope) { params.scope = options.scope; }
      if (options.config_id) { params.config_id = options.config_id; }
      if (options.override_default_response_type) { params.override_default_response_type = "true"; }
      if (options.auth_type) { params.auth_type = options.auth_type; }
      if (options.return_scopes) { params.return_scopes = "true"; }
      var url = BASE + "/" + settings.version + "/dialog/oauth?" + new URLSearchParams(params).toString();
      // Synchronously, inside FB.login: a real popup, as Meta's SDK opens one.
      var popup = window.open(url, "fb_sandbox_login_" + nonce, "width=600,height=700");
      if (!popup) { callback(cancelled()); return; }
      var entry = { callback: callback, popup: popup };
      entry.listener = function (event) {
        var data = event.data || {};
        if (event.origin !== BASE_ORIGIN || data.type !== "fb-sandbox-login" || data.nonce !== nonce) {
          return;
        }
        if (data.code) {
          var auth = { code: data.code };
          if (data.granted_scopes) { auth.grantedScopes = data.granted_scopes; }
          finish({ status: "connected", authResponse: auth });
        } else {
          finish(cancelled());
        }
      };
      // A popup closed without an answer is a cancel (Meta's SDK reports authResponse: null).
      entry.timer = window.setInterval(function () { if (popup.closed) { finish(cancelled()); } }, 200);
      pending = entry;
      window.addEventListener("message", entry.listener);
    }
  };

  window.FB = FB;
  if (typeof window.fbAsyncInit === "function") { window.fbAsyncInit(); }
})(window);
