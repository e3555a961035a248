-- A title search on a run page reads an index, not every case of the project: a
-- trigram index (pg_trgm, shipped with PostgreSQL as a trusted extension) on the
-- lower-cased title answers `LOWER(title) LIKE '%…%'` of three characters or more.
-- Where the extension cannot be installed (not available, or no right to create it),
-- the migration still succeeds and searches scan the project's cases as before.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
            CREATE INDEX cases_title_trigrams ON cases USING gin (LOWER(title) gin_trgm_ops);
        EXCEPTION WHEN insufficient_privilege OR feature_not_supported THEN
            RAISE NOTICE 'pg_trgm could not be installed (%); title searches scan the cases', SQLERRM;
        END;
    END IF;
END
$$;
