"""PostgreSQL triggers that NOTIFY a tenant's id when its status read may have changed (a
status column of its connection, the connection itself, or the tenant): how every process's
status cache (crm_meta.infra.statuscache) hears of writes made anywhere. Schema, so `create_all`
installs them as migrations 0006, 0011 and 0012 do."""

from sqlalchemy import DDL, event

from crm_meta.models.meta_connection import STATUS_COLUMNS, MetaConnection

CHANNEL = "crm_meta_status"
FUNCTION = f"""
CREATE OR REPLACE FUNCTION crm_meta_notify_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        PERFORM pg_notify('{CHANNEL}', '*');
    ELSIF TG_TABLE_NAME = 'tenants' THEN
        PERFORM pg_notify('{CHANNEL}', OLD.id::text);
    ELSE
        IF TG_OP <> 'INSERT' THEN
            PERFORM pg_notify('{CHANNEL}', OLD.tenant_id::text);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM pg_notify('{CHANNEL}', NEW.tenant_id::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$
"""
TRIGGERS = (
    "CREATE TRIGGER crm_meta_status_tokens AFTER INSERT OR DELETE OR UPDATE OF "
    f"tenant_id, {', '.join(STATUS_COLUMNS)} ON meta_tokens "
    "FOR EACH ROW EXECUTE FUNCTION crm_meta_notify_status()",
    "CREATE TRIGGER crm_meta_status_tokens_truncate AFTER TRUNCATE ON meta_tokens "
    "FOR EACH STATEMENT EXECUTE FUNCTION crm_meta_notify_status()",
    "CREATE TRIGGER crm_meta_status_tenants AFTER DELETE OR UPDATE OF id, slug ON tenants "
    "FOR EACH ROW EXECUTE FUNCTION crm_meta_notify_status()",
)

# meta_tokens is created after tenants (its foreign key), so both tables exist by then.
for statement in (FUNCTION, *TRIGGERS):
    event.listen(MetaConnection.__table__, "after_create", DDL(statement).execute_if(dialect="postgresql"))
