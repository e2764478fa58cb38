-- bte status reads the schema version with the reader role.
GRANT SELECT ON bte.schema_migrations TO bte_reader;
