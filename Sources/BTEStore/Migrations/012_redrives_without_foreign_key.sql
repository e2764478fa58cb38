-- A foreign key to bte.rejected_events would make PostgreSQL refuse its TRUNCATE for the key
-- rather than for immutability; rejects are never deleted, so the key guards nothing.
ALTER TABLE bte.redrives DROP CONSTRAINT IF EXISTS redrives_reject_id_fkey;
