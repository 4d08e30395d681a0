"""Meta sandbox: an in-memory emulator of Meta's login dialog and Graph API.

Same paths, shapes, status codes and error bodies as Meta (shared/docs/meta-graph-reference.md)
under one base URL serving both the dialog and the Graph API. Never served in production.

Modules: state (Sandbox), config (settings), fixtures (test data), tokens (grants, tokens,
codes), auth (token checks, appsecret_proof), dialog (consent page), oauth (access_token,
debug_token), graph (dispatcher, headers, faults), schema/nodes/fields (Graph objects),
marketing/marketing_data/insights (an ad account's campaigns and insights, a page's lead forms
and their leads), batch, control (/_sandbox endpoints), server (blueprint, standalone app,
live server).

Control endpoints (relative to the base; loopback clients only, or callers sending
SANDBOX_CONTROL_TOKEN in X-Sandbox-Control-Token; see control.py):
  POST /_sandbox/reset
  GET|POST|DELETE /_sandbox/faults   {path, code?, error_subcode?, http_status?, count?,
                                     latency_ms?, malformed?, regain_minutes?, method?, message?,
                                     inspect_error? (debug_token: the error inside `data`, HTTP
                                     200), batch_null? (inside a batch: the item answers null)}
  GET|POST /_sandbox/clock           POST {advance_seconds} -> {now, offset_seconds}
  GET|DELETE /_sandbox/calls         -> {calls: [{method, path, time, token_id, status}], count}
  POST /_sandbox/signed-request      {user_id} -> {signed_request}
  GET|POST /_sandbox/config          merge settings (see config.DEFAULTS)
  POST /_sandbox/tokens              {user_id?, scopes?, expires_in?, type?} -> {access_token, ...}
  POST /_sandbox/users/<id>/invalidate  {subcode: 460|459|464|467|458}
  GET /_sandbox/users                test users and their assets

Like Meta: no PKCE (the dialog drops code_challenge, the exchange refuses any code_verifier);
no `method=GET` override (a POST to a read-only node or edge is 100/33, see schema.Edge.methods);
a batch needs its access_token as a top-level parameter; Login for Business issues system-user
tokens that never expire, or expire in 60 days (config system_user_expires_in) and are
refreshed by fb_exchange_token with set_token_expires_in_60_days=true; a consent form may
share only some businesses (`business_id`, repeated), reflected in granular_scopes.

Marketing: GET/POST act_<id>/campaigns, GET/POST/DELETE /<campaign id>, GET act_<id>/insights
and /<campaign id>/insights (date_preset, time_range, fields, level, time_increment, cursor
paging), GET /<page id>/leadgen_forms, GET /<form id>/leads (filtering on time_created). Each
call naming an ad account counts against its hourly `ad_account_call_budget`, reported in
x-ad-account-usage and, with enforce_rate_limits, refused with 80004 once spent. Ads (ads.py,
ads_data.py): act_<id>/adsets and /ads, AdSet and Ad nodes, field expansion on campaigns, ad sets
and ads (insights.date_preset(...){...}, campaign{name}, adset{name}, .as()), ad-level insights,
async insights (POST act_<id>/insights -> report_run_id; the run's async_status and /insights);
leads from ads carry ad_id, adset_id and campaign_id. served.py lists every type and edge served.

Data access: once `data_access_expires_at` passes, WhatsApp calls fail with HTTP 403,
code 200, error_user_title "Data access expired" (the token itself stays valid) until the
user passes the dialog again; /me/permissions then lists whatsapp_business_management as
"expired".
"""

from .fixtures import USER_WITH_BUSINESSES, USER_WITHOUT_ASSETS, USER_WITHOUT_BUSINESSES
from .server import LiveServer, create_blueprint, create_sandbox_app, run_standalone, serve_in_thread
from .state import Sandbox

__all__ = [
    "USER_WITHOUT_ASSETS",
    "USER_WITHOUT_BUSINESSES",
    "USER_WITH_BUSINESSES",
    "LiveServer",
    "Sandbox",
    "create_blueprint",
    "create_sandbox_app",
    "run_standalone",
    "serve_in_thread",
]
