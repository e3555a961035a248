-- A title search on a run page reads an index, not every case of the project: a
-- trigram index (pg_trgm, shipped with PostgreSQL as a trusted extension) on the
-- lower-cased title answers `LOWER(title) LIKE '%…%'` of three characters or more.
-- Whatever stops it (the extension not available, no right to create it, installed in
-- a schema of its own) leaves a NOTICE and searches that scan the project's cases as
-- before; the migration itself never fails for it.
DO $$
DECLARE
    nsp TEXT;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
            SELECT n.nspname INTO nsp FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                WHERE e.extname = 'pg_trgm';
            EXECUTE format(
                'CREATE INDEX IF NOT EXISTS cases_title_trigrams ON cases USING gin (LOWER(title) %I.gin_trgm_ops)',
                nsp
            );
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'no trigram index on case titles (%); title searches scan the cases', SQLERRM;
        END;
    END IF;
END
$$;
