"""The signed session cookie of our own pages, opened only when the request carries one."""

from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's cookie sessions; a request without the cookie (every API call with a bearer
    token, every webhook delivery) gets an empty session without building the signing
    serializer first, nor parsing cookies when it sent no Cookie header at all, and its end
    reads none of the seven cookie settings (there is no cookie to set or clear)."""

    def open_session(self, app, request):
        if app.secret_key and not (request.environ.get("HTTP_COOKIE")
                                   and request.cookies.get(self.get_cookie_name(app))):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app, session, response):
        if not session and not session.modified:  # what Flask does for it, without the settings
            if session.accessed:
                response.vary.add("Cookie")
            return
        super().save_session(app, session, response)
