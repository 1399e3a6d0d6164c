-- FerretDB 1.24 filters with `_jsonb->'field' @> value` but builds btree indexes on
-- `_jsonb->'field'`, which cannot serve `@>`: every query, by _id too, read the whole
-- table (docs/decisions.md §18). Each such index gets a GIN twin on the same expression
-- (a compound index: on its first field), which serves `@>`: an event trigger twins new indexes, and the loop at the end the
-- indexes made before it existed. Applied to FerretDB's database at every start.
CREATE OR REPLACE FUNCTION rcm_gin_twin_of(btree oid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  expression text := substring(
    pg_get_indexdef(btree) FROM 'USING btree \(+(_jsonb -> ''[^'']*''::text)\)'
  );
BEGIN
  IF expression IS NOT NULL THEN
    -- fastupdate off: a pending list would be read by every query until a vacuum
    EXECUTE format(
      'CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((%s) jsonb_path_ops)'
      ' WITH (fastupdate = off)',
      left((SELECT relname FROM pg_class WHERE oid = btree), 59) || '_gin',
      (SELECT indrelid::regclass FROM pg_index WHERE indexrelid = btree),
      expression
    );
  END IF;
END $$;

CREATE OR REPLACE FUNCTION rcm_gin_twin() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM rcm_gin_twin_of(objid)
  FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE INDEX';
END $$;

DROP EVENT TRIGGER IF EXISTS rcm_gin_twin;
CREATE EVENT TRIGGER rcm_gin_twin ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
  EXECUTE FUNCTION rcm_gin_twin();

SELECT rcm_gin_twin_of(indexrelid) FROM pg_index i JOIN pg_am a ON a.oid = (
  SELECT relam FROM pg_class WHERE oid = i.indexrelid
) WHERE a.amname = 'btree' AND i.indrelid::regclass::text NOT LIKE 'pg_%';
