"""The signed session cookie of our own pages, opened only when the request carries one."""

from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's cookie sessions; a request without the cookie (every API call with a bearer
    token) gets an empty session without building the signing serializer first, nor parsing
    cookies when it sent no Cookie header at all."""

    def open_session(self, app, request):
        if app.secret_key and not (request.environ.get("HTTP_COOKIE")
                                   and request.cookies.get(self.get_cookie_name(app))):
            return self.session_class()
        return super().open_session(app, request)
