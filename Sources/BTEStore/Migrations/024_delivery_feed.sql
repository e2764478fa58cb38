-- The API follows every stream with one reader: it reads the deliveries stored since its cursor
-- in (transaction, seq) order, only of transactions older than every one still running. A seq
-- alone can't be such a cursor: two sink members commit out of seq order, and a row committed
-- late behind a higher seq already read would be skipped.
ALTER TABLE bte.insight_deliveries ADD COLUMN IF NOT EXISTS tx xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX IF NOT EXISTS insight_deliveries_feed_idx ON bte.insight_deliveries (tx, seq);
