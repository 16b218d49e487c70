-- The text a rejected capture would have given: lets a size rejection that keeps coming back with the very
-- same text be recognised as the page's new normal (pipeline.PERSISTENT_REJECTIONS).
ALTER TABLE snapshots ADD COLUMN text_hash text;
