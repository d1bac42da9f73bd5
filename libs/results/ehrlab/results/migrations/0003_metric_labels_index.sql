-- Label filters on metrics (`labels @> {...}`): without an index, a label that matches few rows or none
-- reads the whole table (or the whole experiment). jsonb_path_ops indexes exactly containment.
CREATE INDEX metrics_labels ON metrics USING gin (labels jsonb_path_ops);
