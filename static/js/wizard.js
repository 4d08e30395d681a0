// The wizard's progressive enhancements; every page works without this file.
// Live search: as the user types, fetch the same server-rendered page and swap in its results.
(function () {
  "use strict";

  function enhanceSearch(form) {
    var target = document.getElementById(form.getAttribute("data-live-search"));
    var input = form.querySelector("input[type=search]");
    if (!target || !input || !window.fetch || !window.DOMParser) {
      return;
    }
    var timer = null;
    var latest = 0;

    function url() {
      var params = new URLSearchParams(new FormData(form));
      return form.getAttribute("action") + "?" + params.toString();
    }

    function refresh() {
      var ticket = ++latest;
      var address = url();
      fetch(address, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.text();
        })
        .then(function (html) {
          if (ticket !== latest) { return; }  // an older answer arriving late
          var page = new DOMParser().parseFromString(html, "text/html");
          var fresh = page.getElementById(target.id);
          if (!fresh) { return; }
          target.innerHTML = fresh.innerHTML;
          if (window.history && window.history.replaceState) {
            window.history.replaceState(null, "", address);
          }
        })
        .catch(function () {
          form.submit();  // fall back to the plain page load
        });
    }

    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 250);
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      window.clearTimeout(timer);
      refresh();
    });
  }

  document.querySelectorAll("form[data-live-search]").forEach(enhanceSearch);
})();
