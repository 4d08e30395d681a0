"""crm-meta: connect a CRM tenant's Meta (Facebook) business account, end to end.

The application factory is `crm_meta.app.create_app`; importing this package builds nothing.
"""
