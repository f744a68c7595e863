-- Stands for migration 5 of a branch not yet merged; replaced by it at the merge.
SELECT 1;
