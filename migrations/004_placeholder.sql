-- Stands for migration 4 of a branch not yet merged; replaced by it at the merge.
SELECT 1;
