-- Erasure by reference, for reapplying the privacy ledger after a restore: a backup older than
-- an erasure brings the person's subject back, and the ledger (which names people by reference
-- only) is all that says who they were. Every user id of the workspace whose reference matches,
-- in the subjects or the read tables, is erased as `privacy.erase_person` erases a user id.
-- It reads every subject of the workspace: meant for restores, not for everyday requests.
CREATE OR REPLACE FUNCTION privacy.erase_reference(workspace uuid, ref text) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    person text;
    outcome jsonb;
    people integer := 0;
    subjects integer := 0;
BEGIN
    FOR person IN
        SELECT s.user_id FROM bte_keys.subjects s
        WHERE s.workspace_id = workspace AND privacy.person_ref(workspace, s.user_id) = ref
        UNION SELECT v.user_id FROM bte.behavioral_vectors v
        WHERE v.workspace_id = workspace AND privacy.person_ref(workspace, v.user_id) = ref
        UNION SELECT h.user_id FROM bte.bv_history h
        WHERE h.workspace_id = workspace AND privacy.person_ref(workspace, h.user_id) = ref
        UNION SELECT d.user_id FROM bte.insight_deliveries d
        WHERE d.workspace_id = workspace AND privacy.person_ref(workspace, d.user_id) = ref
        ORDER BY 1
    LOOP
        outcome := privacy.erase_person(workspace, person);
        people := people + 1;
        IF (outcome ->> 'subject_deleted')::boolean THEN
            subjects := subjects + 1;
        END IF;
    END LOOP;
    RETURN jsonb_build_object('user_ids', people, 'subjects_deleted', subjects);
END
$$;
REVOKE ALL ON FUNCTION privacy.erase_reference(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.erase_reference(uuid, text) TO bte_privacy;
