"""Meta's webhooks blueprint: verification (GET) and signed deliveries (POST) at
/webhooks/meta, and at CRM Ventas' paths /webhooks/meta/<tenant_id> and /webhooks/meta/leadgen
so its Meta app settings keep working. No CSRF, no X-Admin-Token: Meta signs instead."""

from flask import Blueprint

bp = Blueprint("webhooks", __name__)

from crm_meta.webhooks import views  # noqa: E402,F401  (routes attach to bp)
