-- A threshold whose zero means "off" (the delivery holdout share) may be set to 0; which keys
-- may be zero, and every key's bounds, are checked where changes are made (bte thresholds set).
ALTER TABLE bte.threshold_changes DROP CONSTRAINT IF EXISTS threshold_changes_value_check;
ALTER TABLE bte.threshold_changes ADD CONSTRAINT threshold_changes_value_check CHECK (value >= 0);
