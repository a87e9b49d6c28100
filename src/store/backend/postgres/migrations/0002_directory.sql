-- The cluster directory (src/app/directory): views published by each tenant's owner,
-- commands for the owner, and NOTIFY on every spec change.

-- The view of each tenant as its owner last published it (the admin API's TenantView).
CREATE TABLE tenant_views (
    tenant     text PRIMARY KEY,
    view       jsonb NOT NULL,
    owner      text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_views_updated_at ON tenant_views (updated_at);

-- Commands (sync, dry run, preview, restart, stop, invitation) for the node that runs a
-- tenant: the caller inserts, the owner claims, executes and records `result`.
CREATE TABLE tenant_commands (
    id         bigserial PRIMARY KEY,
    tenant     text NOT NULL,
    command    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    claimed_by text,
    claimed_at timestamptz,
    done_at    timestamptz,
    result     jsonb
);
CREATE INDEX tenant_commands_open ON tenant_commands (tenant) WHERE done_at IS NULL;

CREATE FUNCTION tenant_commands_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('commands', NEW.tenant);
    RETURN NULL;
END $$;

CREATE TRIGGER tenant_commands_notify AFTER INSERT ON tenant_commands
    FOR EACH ROW EXECUTE FUNCTION tenant_commands_notify();

-- Every write of a spec (`meta` key `tenant\0<id>`) tells every node, whoever wrote it;
-- a deleted spec takes its published view with it.
CREATE FUNCTION meta_specs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prefix constant bytea := '\x74656e616e7400'::bytea;  -- 'tenant' || NUL
    spec_key bytea;
    spec_tenant text;
BEGIN
    IF TG_OP = 'DELETE' THEN spec_key := OLD.key; ELSE spec_key := NEW.key; END IF;
    IF length(spec_key) > length(prefix) AND substring(spec_key FROM 1 FOR length(prefix)) = prefix THEN
        spec_tenant := convert_from(substring(spec_key FROM length(prefix) + 1), 'UTF8');
        IF TG_OP = 'DELETE' THEN
            DELETE FROM tenant_views WHERE tenant_views.tenant = spec_tenant;
        END IF;
        PERFORM pg_notify('specs', spec_tenant);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER meta_specs_notify AFTER INSERT OR UPDATE OR DELETE ON meta
    FOR EACH ROW EXECUTE FUNCTION meta_specs_notify();
