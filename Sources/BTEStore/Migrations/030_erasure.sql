-- Erasure of a person, and privacy records that never hold a user id.
--
-- The privacy tables name a person by reference: lowercase hex SHA-256 of
-- `<workspace_id>/<user_id>`. Whoever knows the id can compute it (to look up, suppress or audit);
-- the tables alone name nobody, so erasing a person leaves no id of theirs here. Rows written
-- before this migration held user ids: they are rewritten to references once, here (the only
-- change ever made to these append-only tables, by their owner).
CREATE OR REPLACE FUNCTION privacy.person_ref(workspace uuid, user_id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(workspace::text || '/' || CASE
        WHEN user_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN lower(user_id)
        ELSE user_id END, 'UTF8')), 'hex')
$$;

ALTER TABLE privacy.requests DISABLE TRIGGER USER;
UPDATE privacy.requests r SET user_ids = ARRAY(
    SELECT privacy.person_ref(r.workspace_id, u) FROM unnest(r.user_ids) WITH ORDINALITY AS t(u, n) ORDER BY n)
WHERE EXISTS (SELECT 1 FROM unnest(r.user_ids) u WHERE u !~ '^[0-9a-f]{64}$');
ALTER TABLE privacy.requests ENABLE TRIGGER USER;

ALTER TABLE privacy.request_events DISABLE TRIGGER USER;
UPDATE privacy.request_events e SET user_id = privacy.person_ref(r.workspace_id, e.user_id)
FROM privacy.requests r WHERE r.request_id = e.request_id AND e.user_id IS NOT NULL AND e.user_id !~ '^[0-9a-f]{64}$';
ALTER TABLE privacy.request_events ENABLE TRIGGER USER;
ALTER TABLE privacy.request_events RENAME COLUMN user_id TO person_ref;
ALTER TABLE privacy.requests RENAME COLUMN user_ids TO person_refs;

ALTER TABLE privacy.access_log DISABLE TRIGGER USER;
UPDATE privacy.access_log SET user_id = privacy.person_ref(workspace_id, user_id)
WHERE user_id IS NOT NULL AND user_id !~ '^[0-9a-f]{64}$';
ALTER TABLE privacy.access_log ENABLE TRIGGER USER;
ALTER TABLE privacy.access_log RENAME COLUMN user_id TO person_ref;

UPDATE privacy.suppressions SET user_id = privacy.person_ref(workspace_id, user_id) WHERE user_id !~ '^[0-9a-f]{64}$';
ALTER TABLE privacy.suppressions RENAME COLUMN user_id TO person_ref;

-- Read tables an erasure deletes from although nothing else may: their rows are refused UPDATE,
-- DELETE and TRUNCATE as before, except a DELETE inside `privacy.erase_person`.
CREATE OR REPLACE FUNCTION bte.refuse_mutation_unless_erasing() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('bte.erasing', true) = 'on' THEN
        RETURN CASE WHEN TG_LEVEL = 'ROW' THEN OLD ELSE NULL END;
    END IF;
    RAISE EXCEPTION 'bte: % is an immutable log; % is not allowed', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'P0001', HINT = 'Logs are append-only. Corrections are new events.';
END
$$;
DO $$
DECLARE
    target text;
BEGIN
    FOREACH target IN ARRAY ARRAY['bte.insight_deliveries', 'bte.rejected_events'] LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER refuse_update_delete BEFORE UPDATE OR DELETE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION bte.refuse_mutation_unless_erasing()', target);
        EXECUTE format('CREATE OR REPLACE TRIGGER refuse_statement BEFORE UPDATE OR DELETE OR TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION bte.refuse_mutation_unless_erasing()', target);
    END LOOP;
END
$$;

-- A reject's payload as JSON, or NULL when it is not a JSON object.
CREATE OR REPLACE FUNCTION privacy.payload_json(payload bytea) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    parsed jsonb;
BEGIN
    parsed := convert_from(payload, 'UTF8')::jsonb;
    RETURN CASE WHEN jsonb_typeof(parsed) = 'object' THEN parsed END;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

-- Erases one person: deletes their subject (id and key: their rows in the logs stay, unreadable
-- as theirs), their rows in the read tables (latest vector, vector history, delivery decisions),
-- and the rejects whose payload names them; a suppression stays. Returns what it did, as counts.
-- Rows of the logs stored before subjects existed are counted (`unsealed_rows`): those can't be
-- erased and the request says so.
CREATE OR REPLACE FUNCTION privacy.erase_person(workspace uuid, person text) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    subjects integer;
    vectors integer;
    history integer;
    deliveries integer;
    rejects integer;
    unsealed bigint;
BEGIN
    -- One erasure at a time, so `privacy.erasures` is appended in commit order (readers use its
    -- seq as a cursor); and none while a batch of ingest holds the person (it takes this lock
    -- shared before it reads suppressions and subjects).
    LOCK TABLE privacy.erasures IN EXCLUSIVE MODE;
    -- The person's bucket, as ingest holds it (SubjectDirectory.personBuckets: 128).
    PERFORM pg_advisory_xact_lock(hashtext('bte.person'), hashtext(workspace::text || '/' || person) & 127);
    PERFORM set_config('bte.erasing', 'on', true);
    DELETE FROM bte_keys.subjects WHERE workspace_id = workspace AND user_id = person;
    GET DIAGNOSTICS subjects = ROW_COUNT;
    -- Outputs name a user as the interaction events did: a UUID in any case.
    DELETE FROM bte.behavioral_vectors WHERE workspace_id = workspace AND (user_id = person OR lower(user_id) = person);
    GET DIAGNOSTICS vectors = ROW_COUNT;
    DELETE FROM bte.bv_history WHERE workspace_id = workspace AND (user_id = person OR lower(user_id) = person);
    GET DIAGNOSTICS history = ROW_COUNT;
    DELETE FROM bte.insight_deliveries WHERE workspace_id = workspace AND (user_id = person OR lower(user_id) = person);
    GET DIAGNOSTICS deliveries = ROW_COUNT;
    DELETE FROM bte.rejected_events r WHERE r.payload IS NOT NULL AND EXISTS (
        SELECT 1 FROM (SELECT privacy.payload_json(r.payload) AS p) j
        WHERE coalesce(lower(j.p ->> 'workspace_id'), '00000000-0000-0000-0000-000000000000') = workspace::text
          AND (j.p ->> 'user_id' = person OR lower(j.p ->> 'user_id') = person
               OR lower(j.p ->> 'actor_user_id') = person));
    GET DIAGNOSTICS rejects = ROW_COUNT;
    PERFORM set_config('bte.erasing', 'off', true);
    SELECT (SELECT count(*) FROM core.interaction_events
            WHERE workspace_id = workspace AND subject IS NULL AND (user_id = person OR lower(user_id) = person))
         + (SELECT count(*) FROM core.business_events
            WHERE workspace_id = workspace AND subject IS NULL AND actor_user_id::text = person)
         + (SELECT count(*) FROM core.user_actions
            WHERE workspace_id = workspace AND subject IS NULL AND actor_user_id::text = person)
    INTO unsealed;
    -- Readers of the projection drop what they hold of the workspace and rebuild it from the logs.
    INSERT INTO privacy.erasures (workspace_id) VALUES (workspace);
    RETURN jsonb_build_object('subject_deleted', subjects > 0, 'vectors', vectors, 'vector_history', history,
                              'deliveries', deliveries, 'rejects', rejects, 'unsealed_rows', unsealed);
END
$$;

-- Each completed erasure's workspace, in order: a projector that holds a workspace's state in
-- memory drops it when a new one appears, so the erased person's state goes with it.
CREATE TABLE IF NOT EXISTS privacy.erasures (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id uuid NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
SELECT bte.make_immutable('privacy.erasures');

REVOKE ALL ON FUNCTION privacy.erase_person(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.erase_person(uuid, text) TO bte_privacy;
GRANT EXECUTE ON FUNCTION privacy.person_ref(uuid, text) TO bte_privacy, bte_ingest, bte_reader;
GRANT SELECT ON privacy.erasures TO bte_reader, bte_privacy, bte_ingest;
-- An export lists the model segments that name the person.
GRANT SELECT ON bte.segments TO bte_privacy;
