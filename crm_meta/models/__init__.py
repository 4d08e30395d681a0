"""The data model: one module per aggregate."""

from crm_meta.models import status_triggers  # noqa: F401  (DDL events on the tables)
from crm_meta.models.app_health import AppHealth
from crm_meta.models.audit_event import AuditEvent, DataDeletionRequest
from crm_meta.models.gateway_token import GatewayToken
from crm_meta.models.meta_channel import MetaChannel
from crm_meta.models.meta_connection import MetaConnection
from crm_meta.models.notification import NotificationOutbox
from crm_meta.models.oauth_state import OAuthState
from crm_meta.models.service_key import ServiceKey
from crm_meta.models.tenant import Tenant
from crm_meta.models.user import ROLES, User
from crm_meta.models.webhook import EventEndpoint, WebhookInbox, WebhookParked

__all__ = [
    "AppHealth",
    "AuditEvent",
    "DataDeletionRequest",
    "EventEndpoint",
    "GatewayToken",
    "MetaChannel",
    "MetaConnection",
    "NotificationOutbox",
    "OAuthState",
    "ROLES",
    "ServiceKey",
    "Tenant",
    "User",
    "WebhookInbox",
    "WebhookParked",
]
