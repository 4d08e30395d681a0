"""Role checks for views: members read, admins change."""

from functools import wraps

from flask import g

from crm_meta.auth.principal import current_principal
from crm_meta.http.errors import Forbidden, NotAuthenticated


def _require(admin: bool):
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            principal = current_principal()
            if principal is None:
                raise NotAuthenticated()
            if admin and not principal.is_admin:
                raise Forbidden("Only a tenant admin can do this", code="admin_required")
            g.tenant = principal.tenant
            return view(*args, **kwargs)

        return wrapped

    return decorator


member_required = _require(admin=False)
admin_required = _require(admin=True)
