-- Schemas, roles and the immutability guard shared by every log.
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS agent;
CREATE SCHEMA IF NOT EXISTS bte;

-- Roles are cluster-wide: another database of the same cluster may have created them.
DO $$
BEGIN
    BEGIN
        CREATE ROLE bte_ingest LOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    BEGIN
        CREATE ROLE bte_reader LOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
END
$$;
ALTER ROLE bte_reader SET default_transaction_read_only = on;

-- Logs accept INSERT only. Triggers bind the table owner too; roles make it impossible anyway.
CREATE OR REPLACE FUNCTION bte.refuse_mutation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'bte: % is an immutable log; % is not allowed', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'P0001', HINT = 'Logs are append-only. Corrections are new events.';
END
$$;

CREATE OR REPLACE FUNCTION bte.make_immutable(target regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- A partition inherits its parent's row triggers but not its statement triggers.
    IF NOT (SELECT relispartition FROM pg_class WHERE oid = target) THEN
        EXECUTE format('CREATE OR REPLACE TRIGGER refuse_update_delete BEFORE UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION bte.refuse_mutation()', target);
    END IF;
    -- Statement triggers refuse the statement itself, even when it would touch no row.
    EXECUTE format('CREATE OR REPLACE TRIGGER refuse_statement BEFORE UPDATE OR DELETE OR TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION bte.refuse_mutation()', target);
END
$$;

GRANT USAGE ON SCHEMA core, agent, bte TO bte_ingest, bte_reader;
